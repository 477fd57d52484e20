// Package sqltext reads SQL text as SQLite's tokenizer does, as far as hiqlite needs:
// tokens, where each statement ends, and whether a text holds any statement.
//
// It is the one lexer of hiqlite. The classifier (package replication) reads the
// leading tokens of a statement from it; the driver and the state machine find with it
// the statements of a text that is one whole transaction and whether a statement's
// tail holds another; the shell cuts its input into statements with [Split]. So a ";"
// inside a string, a quoted name, a comment or a CREATE TRIGGER body ends a statement
// for none of them, and they all agree on where one ends.
//
// Nothing here fails: text SQLite would reject (an unterminated quote or comment, a
// stray byte) still makes a token or ends the input, and SQLite reports the error when it
// prepares the text. The work is linear in the length of the text, and no function
// keeps more than a constant amount of state per statement.
package sqltext
