// Package config defines every Portico setting as a typed value with its
// default, its validation (field-level errors that say what to fix) and the
// resolution of the effective User Portal settings from the site defaults,
// the gateway's own set and its "inherit default settings" flag.
//
// It owns the rules about settings and nothing else: it does not read or
// write the store, open listeners or talk HTTP. The running gateway gets its
// configuration as an immutable Snapshot published through Live.
package config
