// Package portico_test holds the repository-wide checks that belong to no
// one package: today, that every package says in its doc comment what it
// owns.
package portico_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPkgDoc fails for every folder of Go files whose package has no doc
// comment, or one that does not start the way godoc expects ("Package
// name ..." for a library, "Command ..." for a program). A package made only
// of tests (integration/) carries its comment on one of its test files.
func TestPkgDoc(t *testing.T) {
	dirs := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			dirs[filepath.Dir(path)] = append(dirs[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d Go folders: the walk is not looking at the repository", len(dirs))
	}
	for dir, files := range dirs {
		if dir == "." {
			continue // this file's own package: test-only, named above
		}
		checkPkgDoc(t, dir, files)
	}
}

// checkPkgDoc checks one folder: the doc comment must be on a non-test file
// when the folder has any, and on the package itself (not on an external
// foo_test package).
func checkPkgDoc(t *testing.T, dir string, files []string) {
	t.Helper()
	fset := token.NewFileSet()
	type parsed struct {
		name, doc string
		test      bool
	}
	var all []parsed
	hasSource := false
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		f, err := parser.ParseFile(fset, path, src, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		p := parsed{name: f.Name.Name, test: strings.HasSuffix(path, "_test.go")}
		if f.Doc != nil {
			p.doc = f.Doc.Text()
		}
		if !p.test {
			hasSource = true
		}
		all = append(all, p)
	}
	var docs []parsed
	for _, p := range all {
		if p.doc == "" || strings.HasSuffix(p.name, "_test") || (hasSource && p.test) {
			continue
		}
		docs = append(docs, p)
	}
	if len(docs) == 0 {
		where := "one of its non-test files"
		if !hasSource {
			where = "one of its test files"
		}
		t.Errorf("%s: no package doc comment (say what the package owns, on %s)", dir, where)
		return
	}
	for _, p := range docs {
		want := "Package " + p.name + " "
		if p.name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.doc, want) {
			t.Errorf("%s: the package doc comment starts %q, want %q", dir, firstLine(p.doc), want+"...")
		}
	}
	if len(docs) > 1 {
		t.Errorf("%s: %d files carry a package doc comment; keep one", dir, len(docs))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
