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
