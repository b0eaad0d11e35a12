package systemd_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dlkit/dl/internal/testenv"
)

// TestQuickStartUserCanConnect runs the README's quick start as written:
// the database user it creates must be able to log in with the DSN it tells
// the operator to put in dl.env. MariaDB matches a user @'localhost' only
// on the socket once it does not resolve names (skip-name-resolve, common
// and set on this test machine), so a TCP DSN to 127.0.0.1 was refused with
// Error 1045 there.
func TestQuickStartUserCanConnect(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	sqlBlock := regexp.MustCompile(`(?s)mariadb -e "(CREATE DATABASE downloads;.*?)"\n`).FindStringSubmatch(readme)
	dsnText := regexp.MustCompile("at least `DL_MYSQL_DSN` \\(here\\s+`'([^']+)'`").FindStringSubmatch(readme)
	if sqlBlock == nil || dsnText == nil {
		t.Fatal("the README's quick start no longer has its CREATE USER block or its DSN")
	}

	// The quick start's names, made this test's own.
	_, admin := testenv.MySQL(t)
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	user, db := "dlqs_"+suffix, "dlqs_db_"+suffix
	own := strings.NewReplacer("'dl'@", "'"+user+"'@", "downloads", db)
	ctx := context.Background()
	t.Cleanup(func() {
		for _, stmt := range []string{"DROP USER IF EXISTS '" + user + "'@'localhost'", "DROP USER IF EXISTS '" + user + "'@'127.0.0.1'",
			"DROP USER IF EXISTS '" + user + "'@'%'", "DROP DATABASE IF EXISTS `" + db + "`"} {
			if _, err := admin.ExecContext(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	for _, stmt := range strings.Split(own.Replace(sqlBlock[1]), ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			if _, err := admin.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}

	cfg, err := mysql.ParseDSN(strings.Replace(dsnText[1], "dl:", user+":", 1))
	if err != nil {
		t.Fatalf("the README's DSN %q: %v", dsnText[1], err)
	}
	cfg.DBName = db
	cfg.Timeout = 5 * time.Second
	conn, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(ctx); err != nil {
		t.Errorf("the quick start's user cannot log in with the quick start's DSN %s(%s): %v", cfg.Net, cfg.Addr, err)
	}
}
