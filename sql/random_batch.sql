-- Random batch, the ML access pattern: @batches batches of @batch random ids (default 256; enough batches for
-- about @n images, at least one), each read with `id IN (...)` as a data loader asks for a shuffled batch, from
-- a store made by store_many.sql; every byte hashed and checked against the source.
--   .parameter set @backend lmdb
--   .parameter set @path '/tmp/many.lmdb'
--   .parameter set @source fashion-mnist
--   .parameter set @n 10000
--   .read sql/random_batch.sql
-- The ids are deterministic: a linear congruential generator (x' = (1103515245 x + 12345) mod 2^31, id = x
-- mod @n) from @seed (default 1), so every run and the raw C baselines read the same ids (imgbench report:
-- cli/random_batch.hpp). An id drawn twice in one batch is read once, as `IN` reads it.
-- The experiments' data sets (their policy lives here, not in the extension): @source 'fashion-mnist' is
-- Debian's Fashion-MNIST, any other @source is given to dataset() as it is; @every (default 50,000) repeats
-- the first images past that many, as the original comparison repeated CIFAR-10's 50,000 training images.
-- @threads (default 1) is the store's `threads` argument.
UPDATE temp.sqlite_parameters SET value = '/usr/share/datasets/fashion-mnist' WHERE key = '@source' AND value = 'fashion-mnist';
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@every', 50000);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@batch', 256);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@seed', 1);
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@threads', 1);
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path, threads=@threads);
-- @batches is read from the parameter table, not stored there: a default kept from one @n would be wrong for the next.
CREATE TEMP TABLE batch_count AS
  SELECT coalesce((SELECT value FROM temp.sqlite_parameters WHERE key = '@batches'), max(1, @n / @batch)) AS batches;
CREATE TEMP TABLE batch_ids(batch INTEGER, id INTEGER, PRIMARY KEY (batch, id)) WITHOUT ROWID;
WITH RECURSIVE lcg(k, x) AS (SELECT 0, @seed % 2147483648
                             UNION ALL SELECT k + 1, (x * 1103515245 + 12345) % 2147483648 FROM lcg
                             WHERE k + 1 < (SELECT batches FROM batch_count) * @batch)
INSERT OR IGNORE INTO batch_ids SELECT k / @batch, x % @n FROM lcg;
CREATE TEMP TABLE batches AS SELECT DISTINCT batch FROM batch_ids ORDER BY batch;
CREATE INDEX temp.batch_ids_id ON batch_ids(id);  -- the check below joins the source on id
-- One statement reads every batch, each an `id IN (the batch)` on the store (SQLite hands the store the
-- whole list: the vtab's IN processing).
-- measure: random_batch
SELECT image_digest(s.id, s.label, s.pixels) AS digest FROM batches AS b, store AS s
 WHERE s.id IN (SELECT id FROM batch_ids WHERE batch_ids.batch = b.batch);
SELECT imgstore_assert((SELECT image_digest(s.id, s.label, s.pixels) FROM batches AS b, store AS s
                         WHERE s.id IN (SELECT id FROM batch_ids WHERE batch_ids.batch = b.batch))
                       = (SELECT image_digest(d.id, d.label, d.pixels) FROM dataset(@source, @n, @every) AS d
                          JOIN batch_ids AS i ON i.id = d.id),
                       'random_batch: the images read differ from their source');
DROP TABLE temp.store;
DROP TABLE temp.batch_ids;
DROP TABLE temp.batches;
DROP TABLE temp.batch_count;
