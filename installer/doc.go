// Package installer holds Portico's packaging: the Debian package
// (build-deb.sh, deb/), the Windows zip (build-windows.sh, windows/) and
// the Fyne desktop bundle of the admin GUI. Its Go code is only the tests
// that build those packages and install them into throwaway roots; it
// must not touch the host's installed system or the product's code.
package installer
