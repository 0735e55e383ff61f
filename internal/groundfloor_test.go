// Package internal_test holds the rule of the internal/ folder: it is the
// ground floor, the foundations every other package uses (restclient,
// secret, password, loopback, fakeapi, testenv, sambatest, ...). Its
// packages, tests included, import nothing of this module but each other:
// not jobs, sql, the sources and sinks integrations, nor cmd and the
// wiring under cmd/internal. Every import arrow points down.
package internal_test

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/mod/modfile"
)

// upwardImports parses every Go file in fsys, the internal/ folder, and
// returns the imports of module's packages outside module/internal, as
// "file imports path", and how many imports of module/internal it saw.
// It skips testdata and the folders the go command ignores.
func upwardImports(fsys fs.FS, module string) (upward []string, within int, err error) {
	ground := module + "/internal"
	err = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(name)
		if d.IsDir() {
			if name != "." && (base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
			return nil
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %w", name, imp.Path.Value, err)
			}
			switch {
			case p == ground || strings.HasPrefix(p, ground+"/"):
				within++
			case p == module || strings.HasPrefix(p, module+"/"):
				upward = append(upward, name+" imports "+p)
			}
		}
		return nil
	})
	return upward, within, err
}

func TestInternalIsTheGroundFloor(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := modfile.ModulePath(gomod)
	if module == "" {
		t.Fatal("../go.mod names no module")
	}
	upward, within, err := upwardImports(os.DirFS("."), module)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range upward {
		t.Errorf("%s: internal/ is the ground floor and imports nothing of the module above it (move the importer up, e.g. under cmd/internal, or what it needs down)", u)
	}
	// restclient imports loopback, sambatest imports testenv: a walk that
	// sees none of it read nothing.
	if within == 0 {
		t.Fatalf("no import of %s/internal seen: the walk read nothing", module)
	}
}

func TestUpwardImportsAreFound(t *testing.T) {
	const module = "example.test/m"
	file := func(imports ...string) *fstest.MapFile {
		src := "package p\n\nimport (\n"
		for _, i := range imports {
			src += "\t" + strconv.Quote(i) + "\n"
		}
		return &fstest.MapFile{Data: []byte(src + ")\n")}
	}
	for _, c := range []struct {
		name   string
		fsys   fstest.MapFS
		upward []string
		within int
	}{
		{"standard library, other modules and internal/", fstest.MapFS{
			"secret/secret.go": file("os", "golang.org/x/sys/unix", "example.test/m/internal/loopback", "example.test/m/internal"),
		}, nil, 2},
		{"jobs", fstest.MapFS{"a/a.go": file("example.test/m/jobs")}, []string{"a/a.go imports example.test/m/jobs"}, 0},
		{"sql, sinks, sources, cmd and the module root", fstest.MapFS{
			"a/a.go": file("example.test/m/sql/store", "example.test/m/sinks/itglue", "example.test/m/sources"),
			"b/b.go": file("example.test/m/cmd/internal/connect", "example.test/m"),
		}, []string{
			"a/a.go imports example.test/m/sql/store", "a/a.go imports example.test/m/sinks/itglue",
			"a/a.go imports example.test/m/sources", "b/b.go imports example.test/m/cmd/internal/connect", "b/b.go imports example.test/m",
		}, 0},
		{"a test file", fstest.MapFS{"a/a_test.go": file("example.test/m/sources/ad")}, []string{"a/a_test.go imports example.test/m/sources/ad"}, 0},
		{"a name that only begins like internal", fstest.MapFS{"a/a.go": file("example.test/m/internalx")}, []string{"a/a.go imports example.test/m/internalx"}, 0},
		{"testdata and ignored folders", fstest.MapFS{
			"a/testdata/x.go": file("example.test/m/jobs"), "a/_old/x.go": file("example.test/m/jobs"), "a/.x/x.go": file("example.test/m/jobs"),
			"a/notes.txt": &fstest.MapFile{Data: []byte(`import "example.test/m/jobs"`)},
		}, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			upward, within, err := upwardImports(c.fsys, module)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(upward)
			slices.Sort(c.upward)
			if !slices.Equal(upward, c.upward) || within != c.within {
				t.Errorf("upward %q, %d within; want %q, %d", upward, within, c.upward, c.within)
			}
		})
	}
	if _, _, err := upwardImports(fstest.MapFS{"a/a.go": {Data: []byte("package p\nimport jobs\n")}}, module); err == nil {
		t.Error("a file that does not parse passed")
	}
}
