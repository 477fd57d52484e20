package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/gormlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// A small library: authors with a profile, books with tags, and an audit
// log that hooks write.
type Author struct {
	ID        uint
	Name      string `gorm:"uniqueIndex;not null"`
	Email     *string
	Profile   *Profile
	Books     []Book
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

type Profile struct {
	ID       uint
	AuthorID uint `gorm:"uniqueIndex"`
	Bio      string
}

type Book struct {
	ID        uint
	AuthorID  uint
	Title     string `gorm:"size:200;not null"`
	Slug      string `gorm:"uniqueIndex"`
	Pages     int
	Published bool
	Tags      []Tag `gorm:"many2many:book_tags"`
	CreatedAt time.Time
}

type Tag struct {
	ID   uint
	Name string `gorm:"uniqueIndex"`
}

type AuditLog struct {
	ID     uint
	Entity string
	Action string
	Ref    uint
}

var errNegativePages = errors.New("pages must not be negative")

// BeforeCreate fills the slug and refuses nonsense, inside GORM's
// transaction.
func (b *Book) BeforeCreate(tx *gorm.DB) error {
	if b.Pages < 0 {
		return errNegativePages
	}
	if b.Slug == "" {
		b.Slug = strings.ToLower(strings.ReplaceAll(b.Title, " ", "-"))
	}
	return nil
}

// AfterCreate writes an audit row in the same transaction.
func (a *Author) AfterCreate(tx *gorm.DB) error {
	return tx.Create(&AuditLog{Entity: "author", Action: "create", Ref: a.ID}).Error
}

// AfterDelete audits deletions, soft or not.
func (a *Author) AfterDelete(tx *gorm.DB) error {
	return tx.Create(&AuditLog{Entity: "author", Action: "delete", Ref: a.ID}).Error
}

var gormModels = []any{&Author{}, &Profile{}, &Book{}, &Tag{}, &AuditLog{}}

// TestGORM runs a GORM application through github.com/ncruces/go-sqlite3's
// gormlite dialector on plain SQLite and on a follower of a three-node
// cluster, where every write is forwarded to the leader, and through a
// remote client of such a follower.
func TestGORM(t *testing.T) {
	for _, open := range []func(testing.TB) *env{
		openReference,
		func(t testing.TB) *env { return openCluster(t, 3, false) },
		openRemote,
	} {
		e := open(t)
		t.Run(e.name, func(t *testing.T) {
			gormScenario(t, e)
			e.sameTables(t)
		})
	}
}

func gormScenario(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The one-line change: gormlite.OpenDB over the *sql.DB that
	// sql.Open("hiqlite", dsn) returned.
	db, err := gorm.Open(gormlite.OpenDB(e.db), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	db = db.WithContext(ctx)

	// AutoMigrate twice: the second run changes nothing.
	if err := db.AutoMigrate(gormModels...); err != nil {
		t.Fatalf("AutoMigrate: %v", err)
	}
	schema := dumpSchema(t, e)
	applied := e.appliedIndex()
	if err := db.AutoMigrate(gormModels...); err != nil {
		t.Fatalf("second AutoMigrate: %v", err)
	}
	if again := dumpSchema(t, e); again != schema {
		t.Errorf("the second AutoMigrate changed the schema:\n%s\n---\n%s", schema, again)
	}
	if e.hiqlite {
		if after := e.appliedIndex(); after != applied {
			t.Errorf("the second AutoMigrate wrote: applied index %d -> %d", applied, after)
		}
	}

	// Create with associations: profile, books, tags, in one call.
	email := "ursula@example.com"
	ursula := Author{
		Name:    "Ursula",
		Email:   &email,
		Profile: &Profile{Bio: "wrote about Earthsea"},
		Books: []Book{
			{Title: "A Wizard of Earthsea", Pages: 183, Published: true, Tags: []Tag{{Name: "fantasy"}, {Name: "classic"}}},
			{Title: "The Dispossessed", Pages: 341, Published: true, Tags: []Tag{{Name: "sf"}}},
		},
	}
	if err := db.Create(&ursula).Error; err != nil {
		t.Fatalf("create with associations: %v", err)
	}
	if ursula.ID == 0 || ursula.Profile.ID == 0 || ursula.Books[1].ID == 0 || ursula.Books[0].Tags[1].ID == 0 {
		t.Errorf("ids not filled in: %+v", ursula)
	}
	if ursula.Books[0].Slug != "a-wizard-of-earthsea" {
		t.Errorf("BeforeCreate slug = %q", ursula.Books[0].Slug)
	}

	// Read back with preloading, as a fresh struct.
	var got Author
	if err := db.Preload("Profile").Preload("Books", func(db *gorm.DB) *gorm.DB { return db.Order("title") }).Preload("Books.Tags", func(db *gorm.DB) *gorm.DB { return db.Order("name") }).
		First(&got, "name = ?", "Ursula").Error; err != nil {
		t.Fatal(err)
	}
	if got.Profile == nil || got.Profile.Bio != "wrote about Earthsea" || len(got.Books) != 2 ||
		got.Books[0].Title != "A Wizard of Earthsea" || len(got.Books[0].Tags) != 2 || got.Books[0].Tags[0].Name != "classic" {
		t.Errorf("preloaded: %+v", got)
	}
	if got.CreatedAt.IsZero() || !got.CreatedAt.Equal(ursula.CreatedAt) {
		t.Errorf("CreatedAt read back %v, created %v", got.CreatedAt, ursula.CreatedAt)
	}

	// A hook that fails rolls the whole Create back.
	err = db.Create(&Author{Name: "Bad", Books: []Book{{Title: "Negative", Pages: -1}}}).Error
	if !errors.Is(err, errNegativePages) {
		t.Errorf("create with a failing hook: %v", err)
	}
	var n int64
	db.Model(&Author{}).Where("name = ?", "Bad").Count(&n)
	if n != 0 {
		t.Errorf("the failing hook's author was kept")
	}

	// A unique violation keeps SQLite's extended code through GORM, and
	// with TranslateError it becomes gorm.ErrDuplicatedKey.
	err = db.Create(&Author{Name: "Ursula"}).Error
	if !errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		t.Errorf("duplicate name: %v, want sqlite3.CONSTRAINT_UNIQUE", err)
	}
	tdb := db.Session(&gorm.Session{})
	tdb.Config.TranslateError = true
	if err := tdb.Create(&Tag{Name: "sf"}).Error; !errors.Is(err, gorm.ErrDuplicatedKey) {
		t.Errorf("duplicate tag with TranslateError: %v", err)
	}
	tdb.Config.TranslateError = false

	// Updates.
	book := ursula.Books[1]
	if err := db.Model(&book).Update("pages", 387).Error; err != nil {
		t.Fatal(err)
	}
	if res := db.Model(&Book{}).Where("author_id = ?", ursula.ID).Updates(map[string]any{"published": false}); res.Error != nil || res.RowsAffected != 2 {
		t.Errorf("Updates: %v, %d rows", res.Error, res.RowsAffected)
	}
	if err := db.First(&book, book.ID).Error; err != nil {
		t.Fatal(err)
	}
	book.Title = "The Dispossessed (1974)"
	if err := db.Save(&book).Error; err != nil {
		t.Fatal(err)
	}
	var reread Book
	db.First(&reread, book.ID)
	if reread.Pages != 387 || reread.Published || reread.Title != "The Dispossessed (1974)" {
		t.Errorf("after updates: %+v", reread)
	}

	// Transactions: committed, rolled back, and nested (a savepoint).
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Author{Name: "Octavia"}).Error; err != nil {
			return err
		}
		return tx.Transaction(func(tx2 *gorm.DB) error {
			if err := tx2.Create(&Author{Name: "Nested"}).Error; err != nil {
				return err
			}
			return errors.New("undo the nested one")
		})
	})
	if err == nil || err.Error() != "undo the nested one" {
		t.Errorf("transaction: %v", err)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Author{Name: "Octavia"}).Error; err != nil {
			return err
		}
		nested := tx.Transaction(func(tx2 *gorm.DB) error {
			if err := tx2.Create(&Author{Name: "Nested"}).Error; err != nil {
				return err
			}
			return errors.New("undo the nested one")
		})
		if nested == nil {
			return errors.New("the nested transaction did not fail")
		}
		return tx.Create(&Author{Name: "Kept"}).Error
	})
	if err != nil {
		t.Fatalf("transaction with a rolled-back savepoint: %v", err)
	}
	var names []string
	db.Model(&Author{}).Order("name").Pluck("name", &names)
	if fmt.Sprint(names) != "[Kept Octavia Ursula]" {
		t.Errorf("authors after the transactions: %v", names)
	}

	// Soft delete: hidden from queries, visible Unscoped, then gone.
	var octavia Author
	db.First(&octavia, "name = ?", "Octavia")
	if err := db.Delete(&octavia).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.First(&Author{}, "name = ?", "Octavia").Error; !errors.Is(err, gorm.ErrRecordNotFound) {
		t.Errorf("soft-deleted author still found: %v", err)
	}
	var deleted Author
	if err := db.Unscoped().First(&deleted, "name = ?", "Octavia").Error; err != nil || !deleted.DeletedAt.Valid {
		t.Errorf("Unscoped: %+v %v", deleted, err)
	}
	if err := db.Unscoped().Delete(&deleted).Error; err != nil {
		t.Fatal(err)
	}
	db.Unscoped().Model(&Author{}).Where("name = ?", "Octavia").Count(&n)
	if n != 0 {
		t.Errorf("hard delete left the row")
	}

	// The audit log the hooks wrote, in order.
	var audit []string
	db.Model(&AuditLog{}).Order("id").Select("entity || ':' || action").Scan(&audit)
	want := "[author:create author:create author:create author:delete author:delete]"
	if fmt.Sprint(audit) != want {
		t.Errorf("audit log %v, want %s", audit, want)
	}

	// Raw SQL and an aggregate through GORM.
	var stats struct {
		Books int
		Pages int
	}
	if err := db.Raw(`SELECT count(*) AS books, sum(pages) AS pages FROM books`).Scan(&stats).Error; err != nil || stats.Books != 2 || stats.Pages != 183+387 {
		t.Errorf("raw: %+v %v", stats, err)
	}
	// Association mode.
	var wizard Book
	db.First(&wizard, "slug = ?", "a-wizard-of-earthsea")
	if err := db.Model(&wizard).Association("Tags").Append(&Tag{Name: "young adult"}); err != nil {
		t.Fatal(err)
	}
	if c := db.Model(&wizard).Association("Tags").Count(); c != 3 {
		t.Errorf("tags after Append: %d", c)
	}
}

// dumpSchema is the user schema, without hiqlite's own tables.
func dumpSchema(t *testing.T, e *env) string {
	t.Helper()
	rows, err := e.db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE '\_hiqlite\_%' ESCAPE '\' ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, sql string
		if err := rows.Scan(&typ, &name, &sql); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s: %s\n", typ, name, sql)
	}
	return b.String()
}

// appliedIndex is the applied index of the env's node (0 on the
// reference).
func (e *env) appliedIndex() uint64 {
	for i, db := range e.nodes {
		if (db == e.db || db == e.via) && i < len(e.handles) {
			return e.handles[i].AppliedIndex()
		}
	}
	return 0
}
