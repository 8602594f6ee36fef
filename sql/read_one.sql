-- Read one: image @id (default: the middle one) of a store made by store_many.sql, checked against its source.
--   .parameter set @backend hdf5
--   .parameter set @path '/tmp/many.h5'
--   .parameter set @source fashion-mnist
--   .parameter set @n 10000
--   .read sql/read_one.sql
-- The experiments' data sets (their policy lives here, not in the extension): @source 'fashion-mnist' is
-- Debian's Fashion-MNIST, any other @source is given to dataset() as it is; @every (default 50,000) repeats
-- the first images past that many, as the original comparison repeated CIFAR-10's 50,000 training images.
UPDATE temp.sqlite_parameters SET value = '/usr/share/datasets/fashion-mnist' WHERE key = '@source' AND value = 'fashion-mnist';
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@every', 50000);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@id', @n / 2);
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path);
-- measure: read_one
SELECT id, label, pixel_hash(pixels) FROM store WHERE id = @id;
SELECT imgstore_assert((SELECT pixel_hash(pixels) FROM store WHERE id = @id)
                       = (SELECT pixel_hash(pixels) FROM dataset(@source, @id + 1, @every) WHERE id = @id),
                       'read_one: the image read differs from its source');
DROP TABLE temp.store;
