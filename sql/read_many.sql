-- Read many: every image of a store made by store_many.sql, every byte hashed, verified against the source.
--   .parameter set @backend hdf5
--   .parameter set @path '/tmp/many.h5'
--   .parameter set @source fashion-mnist
--   .parameter set @n 10000
--   .read sql/read_many.sql
-- The first read is cold when imgbench may drop the OS page cache (root), the second warm.
-- The experiments' data sets (their policy lives here, not in the extension): @source 'fashion-mnist' is
-- Debian's Fashion-MNIST, any other @source is given to dataset() as it is; @every (default 50,000) repeats
-- the first images past that many, as the original comparison repeated CIFAR-10's 50,000 training images.
-- @threads (default 1, one thread) is the store's `threads` argument; imgbench report runs 1 and the cores.
UPDATE temp.sqlite_parameters SET value = '/usr/share/datasets/fashion-mnist' WHERE key = '@source' AND value = 'fashion-mnist';
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@every', 50000);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@threads', 1);
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path, threads=@threads);
-- measure: read_many cold
SELECT image_digest(id, label, pixels) AS digest FROM store;
-- measure: read_many
SELECT image_digest(id, label, pixels) AS digest FROM store;
SELECT imgstore_assert((SELECT image_digest(id, label, pixels) FROM store)
                       = (SELECT image_digest(id, label, pixels) FROM dataset(@source, @n, @every)),
                       'read_many: the store differs from its source');
DROP TABLE temp.store;
