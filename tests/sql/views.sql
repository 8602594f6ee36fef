-- Views and triggers over store tables (docs/sql.md, "Views and triggers"), in the stock shell with its default
-- settings (trusted_schema=ON). Every store module is DIRECTONLY: a view or trigger kept in the database file
-- never reaches a store, in this process or after reopening; a TEMP view does, and a TEMP trigger may read one.

CREATE VIRTUAL TABLE l USING lmdb(path='l.lmdb', shape='2x2x1');
CREATE VIRTUAL TABLE h USING hdf5(path='h.h5', shape='2x2x1');
CREATE VIRTUAL TABLE p USING png_dir(path='p', shape='2x2x1');
CREATE VIRTUAL TABLE sh USING imgstore(backend='lmdb', path='sh', shape='2x2x1', shards=2);
INSERT INTO l SELECT * FROM synthetic(10, '2x2x1', 1);
INSERT INTO h SELECT * FROM l;
INSERT INTO p SELECT * FROM l;
INSERT INTO sh SELECT * FROM l;
CREATE TABLE log(x INTEGER);
-- A view in the database file is accepted, and every use of it is refused.
CREATE VIEW vl AS SELECT id, label FROM l WHERE id < 3;
CREATE VIEW vh AS SELECT id FROM h;
CREATE VIEW vp AS SELECT id FROM p;
CREATE VIEW vsh AS SELECT id FROM sh;
-- error: unsafe use of virtual table "l"
SELECT * FROM vl;
-- A trigger in the database file that writes a store when a native table changes fails its statement, which
-- changes nothing.
CREATE TRIGGER forget AFTER INSERT ON log BEGIN DELETE FROM l WHERE id = new.x; END;
-- error: unsafe use of virtual table "l"
INSERT INTO log VALUES (1);
-- expect: 10|0
SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM log);

-- process
-- Reopened in a new shell process: the same for every module, under the shell's default trusted_schema=ON.
-- expect: 1
PRAGMA trusted_schema;
-- error: unsafe use of virtual table "l"
SELECT * FROM vl;
-- error: unsafe use of virtual table "h"
SELECT * FROM vh;
-- error: unsafe use of virtual table "p"
SELECT * FROM vp;
-- error: unsafe use of virtual table "sh"
SELECT * FROM vsh;
-- error: unsafe use of virtual table "l"
INSERT INTO log VALUES (2);
-- expect: 10|0
SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM log);
-- The same view made TEMP (the session's own, as a script run at start makes it) works.
CREATE TEMP VIEW tl AS SELECT id, label FROM l WHERE id < 3;
-- expect: 0|4
-- expect: 1|2
-- expect: 2|3
SELECT * FROM tl;
-- expect: 10|10|10
SELECT (SELECT count(*) FROM h), (SELECT count(*) FROM p), (SELECT count(*) FROM sh);
-- A TEMP trigger may read a store; SQLite refuses a write to a DIRECTONLY table from any trigger.
DROP TRIGGER forget;
CREATE TABLE seen(id INTEGER, label INTEGER);
CREATE TEMP TRIGGER copy AFTER INSERT ON log BEGIN INSERT INTO seen SELECT id, label FROM l WHERE id = new.x; END;
INSERT INTO log VALUES (4);
-- expect: 4|9
SELECT * FROM seen;
CREATE TEMP TRIGGER forget_too AFTER INSERT ON log BEGIN DELETE FROM l WHERE id = new.x; END;
-- error: unsafe use of virtual table "l"
INSERT INTO log VALUES (5);
-- expect: 10|1
SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM log);
