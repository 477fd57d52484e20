-- +goose Up
INSERT INTO users (email) VALUES ('ada@example.com'), ('grace@example.com');
INSERT INTO posts (user_id, title) VALUES (1, 'Notes'), (1, 'On the engine'), (2, 'Compilers');

-- +goose Down
DELETE FROM posts;
DELETE FROM users;
