-- +goose Up
CREATE TABLE posts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    title    TEXT NOT NULL,
    n_posts  INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE users ADD COLUMN post_count INTEGER NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER posts_count AFTER INSERT ON posts
BEGIN
    UPDATE users SET post_count = post_count + 1 WHERE id = new.user_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER posts_count;
ALTER TABLE users DROP COLUMN post_count;
DROP TABLE posts;
