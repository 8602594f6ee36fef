-- Your own images: the comparison on a folder of PNG and JPEG files, one sub-folder per class (the layout of
-- torchvision's ImageFolder). The folder is decoded once into a temporary table (measured: decode_folder), then
-- stored into @backend at @path (store_many), read back whole and checked byte for byte (read_many), one image
-- read (read_one), and the store's disk usage set beside the folder's own (disk_usage).
--   ./build/imgbench -p folder=/data/pets --sweep backend=lmdb,hdf5,png_dir sql/folder.sql
-- In the stock shell (the store at @path must not exist yet):
--   .load ./build/imgstore
--   .parameter set @folder /data/pets
--   .parameter set @backend lmdb
--   .parameter set @path '/tmp/pets.lmdb'
--   .read sql/folder.sql
-- @shape (default 'any': each image keeps its size and channels, in a store of shape 'any') may be 'HxWxC':
-- every image converted to C channels and resized to HxW (bilinear with antialiasing, as Pillow's resize), in a
-- store of that shape. @threads (default 1) is the decode's and the store's `threads` argument.
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@shape', 'any');
INSERT OR IGNORE INTO temp.sqlite_parameters(key, value) VALUES ('@threads', 1);
-- measure: decode_folder
CREATE TEMP TABLE source AS
  SELECT id, label, pixels, height, width, channels
  FROM image_folder(@folder, nullif(@shape, 'any'), @threads);
SELECT imgstore_assert((SELECT count(*) FROM source) > 0, 'folder.sql: no PNG or JPEG images under ' || @folder || '/<class>/');
CREATE VIRTUAL TABLE temp.store USING imgstore(backend=@backend, path=@path, threads=@threads, shape=@shape);
SELECT imgstore_assert((SELECT count(*) FROM store) = 0, 'folder.sql: the store ' || @path || ' is not new (it holds images); give it its own @path');
-- measure: store_many
INSERT INTO store(id, label, pixels, height, width, channels)
  SELECT id, label, pixels, height, width, channels FROM source;
-- measure: read_many
SELECT count(*) AS images, image_digest(id, label, pixels) AS digest FROM store;
SELECT imgstore_assert((SELECT image_digest(id, label, pixels) FROM store)
                       = (SELECT image_digest(id, label, pixels) FROM source)
                       AND (SELECT count(*) FROM store JOIN source USING (id)
                            WHERE store.height = source.height AND store.width = source.width
                              AND store.channels = source.channels) = (SELECT count(*) FROM source),
                       'folder.sql: the store differs from the folder');
-- measure: read_one
SELECT id, label, height, width, channels, pixel_hash(pixels) FROM store
WHERE id = (SELECT count(*) / 2 FROM source);
-- measure: disk_usage
SELECT disk_usage(@path) AS store_bytes, disk_usage(@folder) AS folder_bytes,
       sum(length(pixels)) AS pixel_bytes, count(*) AS images FROM source;
DROP TABLE temp.store;
DROP TABLE temp.source;
