-- Store one image: the first image of data set @source, into a new store (@backend at @path).
-- In the stock shell (the store at @path must not exist yet):
--   .load ./build/imgstore
--   .parameter set @backend lmdb
--   .parameter set @path '/tmp/one.lmdb'
--   .parameter set @source fashion-mnist
--   .read sql/store_one.sql
-- Parameters: @backend (lmdb, hdf5, png_dir), @path, @source (see dataset()); @shape defaults to the data set's.
-- The experiments' data sets (their policy lives here, not in the extension): @source 'fashion-mnist' is
-- Debian's Fashion-MNIST, any other @source is given to dataset() as it is; @every (default 50,000) repeats
-- the first images past that many, as the original comparison repeated CIFAR-10's 50,000 training images.
UPDATE temp.sqlite_parameters SET value = '/usr/share/datasets/fashion-mnist' WHERE key = '@source' AND value = 'fashion-mnist';
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@every', 50000);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@shape', dataset_shape(@source));
CREATE TEMP TABLE one AS SELECT * FROM dataset(@source, 1, @every);
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path, shape=@shape);
SELECT imgstore_assert((SELECT count(*) FROM store) = 0, 'store_one: the store ' || @path || ' is not new (it holds images); give each store script its own @path');
-- measure: store_one
INSERT INTO store SELECT * FROM one;
SELECT imgstore_assert((SELECT pixels FROM store WHERE id = 0) = (SELECT pixels FROM one), 'store_one: the stored image differs from its source');
DROP TABLE temp.store;
DROP TABLE temp.one;
