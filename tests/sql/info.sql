-- imgstore_info(table [, schema]): a store table's backend, path, shape and exact count, as
-- pragma_table_info('t') tells a table's columns.
CREATE VIRTUAL TABLE train USING lmdb(path='train.lmdb', shape='8x6x3');
INSERT INTO train SELECT * FROM synthetic(25, '8x6x3', 1);
-- expect: train|lmdb|train.lmdb|8x6x3|8|6|3|25
SELECT * FROM imgstore_info('train');
-- The name is case-insensitive; the hidden schema column says where the table was found (temp first).
CREATE VIRTUAL TABLE temp.train USING imgstore(backend='hdf5', path='t.h5', shape='4x4x1');
-- expect: train|hdf5|4x4x1|0|temp
SELECT name, backend, shape, count, schema FROM imgstore_info('TRAIN');
-- expect: lmdb|25|main
SELECT backend, count, schema FROM imgstore_info('train', 'main');
CREATE VIRTUAL TABLE p USING imgstore(backend='png', path='p_png', shape='2x2x4');
INSERT INTO p SELECT * FROM synthetic(3, '2x2x4', 2);
-- expect: png_dir|3|2|2|4
SELECT backend, count, height, width, channels FROM imgstore_info('p');
-- The count follows the open transaction's changes.
BEGIN;
DELETE FROM p WHERE id = 1;
-- expect: 2
SELECT count FROM imgstore_info('p');
ROLLBACK;
-- A renamed table is found by its new name.
ALTER TABLE p RENAME TO q;
-- expect: q|3
SELECT name, count FROM imgstore_info('q');
-- Not a table, not a store table, no argument.
-- error: imgstore_info(): no such table: nope
SELECT * FROM imgstore_info('nope');
CREATE TABLE native(x);
-- error: table 'native' is not a store table; expected a table of module lmdb, hdf5, png_dir or imgstore
SELECT * FROM imgstore_info('native');
-- error: no query solution
SELECT * FROM imgstore_info;
-- A table of a persistent database that no statement has used yet is connected first.
-- process
-- expect: train|25
SELECT name, count FROM imgstore_info('train');
-- image_batch(id, label, pixels): one blob, the pixels of every row, then the ids, then the labels (int64 LE).
-- expect: 320|1|0200000000000000|1
SELECT length(b), substr(b, 1, 144) = (SELECT pixels FROM train WHERE id = 1), hex(substr(b, 297, 8)),
       substr(b, 305, 8) = (SELECT substr(image_batch(1, label, x'00'), 10, 8) FROM train WHERE id = 1)
  FROM (SELECT image_batch(id, label, pixels) AS b FROM train WHERE id IN (2, 1));
-- expect: 0
SELECT length(image_batch(id, label, pixels)) FROM train WHERE id = 999;
-- error: image_batch(): pixels of id 2 are 2 bytes; expected 1 as the rows before
SELECT image_batch(id, label, pixels) FROM (SELECT 1 AS id, 2 AS label, x'00' AS pixels UNION ALL SELECT 2, 3, x'0000');
-- error: image_batch(): id and label must be integers
SELECT image_batch('a', 1, x'00');
