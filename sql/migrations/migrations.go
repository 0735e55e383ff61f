// Package migrations embeds autoimport's schema migrations: numbered .sql
// files, one set per SQL dialect (mysql for MySQL 8 and MariaDB, sqlite).
package migrations

import "embed"

// FS holds mysql/NNNN_name.sql and sqlite/NNNN_name.sql.
//
//go:embed mysql/*.sql sqlite/*.sql
var FS embed.FS
