package testenv_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlkit/dl/internal/testenv"
)

// TestStartMariaDBLeavesTheMachinesTempFilesAlone: a MariaDB that starts
// removes every "#sql" file in its temporary directory, taking them for
// its own leftovers. A private one sharing the machine's /tmp removed the
// machine's MariaDB's on-disk temporary tables mid-query (a parallel test
// failed: "Error on delete of '/tmp/#sql-temptable-….MAI'"), so it must
// have a directory of its own.
func TestStartMariaDBLeavesTheMachinesTempFilesAlone(t *testing.T) {
	t.Parallel()
	canary, err := os.CreateTemp("", "#sql-temptable-dltest-*.MAI")
	if err != nil {
		t.Fatal(err)
	}
	canary.Close()
	t.Cleanup(func() { os.Remove(canary.Name()) })
	testenv.StartMariaDB(t)
	if _, err := os.Stat(canary.Name()); err != nil {
		t.Fatalf("a file of another server's in %s: %v", filepath.Dir(canary.Name()), err)
	}
}
