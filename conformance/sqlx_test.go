package conformance

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/ncruces/go-sqlite3"
)

type sqlxPlace struct {
	ID      int64          `db:"id"`
	Country string         `db:"country"`
	City    sql.NullString `db:"city"`
	Code    int            `db:"telcode"`
	Founded *time.Time     `db:"founded"`
}

// TestSqlx runs github.com/jmoiron/sqlx on plain SQLite and on a follower
// of a three-node cluster, and through a remote client of such a follower.
func TestSqlx(t *testing.T) {
	for _, open := range []func(testing.TB) *env{
		openReference,
		func(t testing.TB) *env { return openCluster(t, 3, false) },
		openRemote,
	} {
		e := open(t)
		t.Run(e.name, func(t *testing.T) {
			// The one-line change: wrap the hiqlite *sql.DB ("sqlite3"
			// tells sqlx which bind variables to use: ?).
			sqlxScenario(t, sqlx.NewDb(e.db, "sqlite3"))
			e.sameTables(t)
		})
	}
}

// TestSqlxOpen opens a single node with sqlx.Open, as an application that
// uses sqlx throughout does, after telling sqlx that the driver "hiqlite"
// takes ? bind variables: README's snippet. (Without BindDriver, sqlx
// v1.4.0 still binds ?, its default for a driver it does not know, but
// BindType reports UNKNOWN.)
func TestSqlxOpen(t *testing.T) {
	sqlx.BindDriver("hiqlite", sqlx.QUESTION)
	db, err := sqlx.Open("hiqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if got := sqlx.BindType(db.DriverName()); got != sqlx.QUESTION {
		t.Errorf("sqlx.BindType(%q) = %d, want QUESTION (%d)", db.DriverName(), got, sqlx.QUESTION)
	}
	sqlxScenario(t, db)
}

func sqlxScenario(t *testing.T, db *sqlx.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	db.MustExecContext(ctx, `CREATE TABLE place(id INTEGER PRIMARY KEY, country TEXT NOT NULL, city TEXT, telcode INTEGER UNIQUE, founded DATETIME)`)
	rome := time.Date(753, 4, 21, 0, 0, 0, 0, time.UTC)
	places := []sqlxPlace{
		{Country: "Italy", City: sql.NullString{String: "Rome", Valid: true}, Code: 39, Founded: &rome},
		{Country: "Singapore", Code: 65},
		{Country: "Hong Kong", City: sql.NullString{String: "Hong Kong", Valid: true}, Code: 852},
	}
	// NamedExec with a slice of structs: one INSERT of several rows.
	res, err := db.NamedExecContext(ctx, `INSERT INTO place(country, city, telcode, founded) VALUES (:country, :city, :telcode, :founded)`, places)
	if err != nil {
		t.Fatalf("NamedExec: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 3 {
		t.Errorf("NamedExec of 3 places: %d rows", n)
	}
	// NamedExec with a map.
	if _, err := db.NamedExecContext(ctx, `INSERT INTO place(country, telcode) VALUES (:country, :code)`, map[string]any{"country": "Japan", "code": 81}); err != nil {
		t.Fatal(err)
	}

	var it sqlxPlace
	if err := db.GetContext(ctx, &it, `SELECT * FROM place WHERE telcode = ?`, 39); err != nil {
		t.Fatal(err)
	}
	if it.City.String != "Rome" || it.Founded == nil || !it.Founded.Equal(rome) {
		t.Errorf("Get: %+v", it)
	}
	var all []sqlxPlace
	if err := db.SelectContext(ctx, &all, `SELECT * FROM place ORDER BY telcode`); err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 || all[1].Country != "Singapore" || all[1].City.Valid || all[3].Code != 852 {
		t.Errorf("Select: %+v", all)
	}
	var count int
	if err := db.GetContext(ctx, &count, `SELECT count(*) FROM place WHERE city IS NULL`); err != nil || count != 2 {
		t.Errorf("Get a scalar: %d %v", count, err)
	}

	// In expands a slice into placeholders.
	q, args, err := sqlx.In(`SELECT country FROM place WHERE telcode IN (?) ORDER BY country`, []int{39, 81, 999})
	if err != nil {
		t.Fatal(err)
	}
	var countries []string
	if err := db.SelectContext(ctx, &countries, db.Rebind(q), args...); err != nil {
		t.Fatal(err)
	}
	if len(countries) != 2 || countries[0] != "Italy" || countries[1] != "Japan" {
		t.Errorf("In: %v", countries)
	}

	// NamedQuery and a named prepared statement.
	rows, err := db.NamedQueryContext(ctx, `SELECT country FROM place WHERE telcode > :min ORDER BY telcode`, map[string]any{"min": 60})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, c)
	}
	rows.Close()
	if len(seen) != 3 || seen[0] != "Singapore" {
		t.Errorf("NamedQuery: %v", seen)
	}
	stmt, err := db.PrepareNamedContext(ctx, `UPDATE place SET city = :city WHERE telcode = :telcode`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stmt.ExecContext(ctx, map[string]any{"city": "Tokyo", "telcode": 81}); err != nil {
		t.Fatal(err)
	}
	stmt.Close()

	// A transaction with sqlx, and a unique violation inside it.
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.MustExecContext(ctx, `INSERT INTO place(country, telcode) VALUES (?, ?)`, "France", 33)
	_, err = tx.NamedExecContext(ctx, `INSERT INTO place(country, telcode) VALUES (:country, :telcode)`, sqlxPlace{Country: "Dup", Code: 39})
	if !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("duplicate telcode in tx: %v", err)
	}
	var inTx int
	if err := tx.GetContext(ctx, &inTx, `SELECT count(*) FROM place`); err != nil || inTx != 5 {
		t.Errorf("count in tx: %d %v", inTx, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var cities []sql.NullString
	if err := db.SelectContext(ctx, &cities, `SELECT city FROM place ORDER BY telcode`); err != nil {
		t.Fatal(err)
	}
	if len(cities) != 5 || cities[0].Valid || cities[3].String != "Tokyo" {
		t.Errorf("after the transaction: %v", cities)
	}
}
