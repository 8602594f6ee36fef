-- Store many: @n images of data set @source into a new store (@backend at @path), in one transaction.
-- In the stock shell (the store at @path must not exist yet):
--   .load ./build/imgstore
--   .parameter set @backend hdf5
--   .parameter set @path '/tmp/many.h5'
--   .parameter set @source fashion-mnist
--   .parameter set @n 10000
--   .read sql/store_many.sql
-- The images are first read into a temporary table, so the measured statement is the store alone.
-- The experiments' data sets (their policy lives here, not in the extension): @source 'fashion-mnist' is
-- Debian's Fashion-MNIST, any other @source is given to dataset() as it is; @every (default 50,000) repeats
-- the first images past that many, as the original comparison repeated CIFAR-10's 50,000 training images.
-- @threads (default 1, one thread) is the store's `threads` argument; imgbench report runs 1 and the cores.
UPDATE temp.sqlite_parameters SET value = '/usr/share/datasets/fashion-mnist' WHERE key = '@source' AND value = 'fashion-mnist';
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@every', 50000);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@threads', 1);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@shape', dataset_shape(@source));
CREATE TEMP TABLE source AS SELECT * FROM dataset(@source, @n, @every);
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path, threads=@threads, shape=@shape);
SELECT imgstore_assert((SELECT count(*) FROM store) = 0, 'store_many: the store ' || @path || ' is not new (it holds images); give each store script its own @path');
-- measure: store_many
INSERT INTO store SELECT * FROM source;
SELECT imgstore_assert((SELECT count(*) FROM store) = @n, 'store_many: the store does not hold @n images');
DROP TABLE temp.store;
DROP TABLE temp.source;
