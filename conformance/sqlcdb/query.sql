-- name: CreateAuthor :one
INSERT INTO authors (name, bio) VALUES (?, ?)
RETURNING *;

-- name: GetAuthor :one
SELECT * FROM authors
WHERE id = ? LIMIT 1;

-- name: ListAuthors :many
SELECT * FROM authors
ORDER BY name;

-- name: UpdateAuthorBio :exec
UPDATE authors SET bio = ?
WHERE id = ?;

-- name: DeleteAuthor :execrows
DELETE FROM authors
WHERE id = ?;

-- name: CreateBook :execlastid
INSERT INTO books (author_id, title, published) VALUES (?, ?, ?);

-- name: ListBooksByAuthors :many
SELECT books.id, books.title, authors.name AS author
FROM books JOIN authors ON authors.id = books.author_id
WHERE books.author_id IN (sqlc.slice('author_ids'))
ORDER BY books.title;

-- name: CountBooks :one
SELECT count(*) FROM books
WHERE author_id = ?;
