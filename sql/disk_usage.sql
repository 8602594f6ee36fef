-- Disk usage of a store made by store_many.sql: allocated bytes (what the disk loses) and apparent bytes.
--   .parameter set @path '/tmp/many.h5'
--   .parameter set @n 10000
--   .read sql/disk_usage.sql
-- measure: disk_usage
SELECT disk_usage(@path) AS allocated_bytes, file_bytes(@path) AS file_bytes,
       disk_usage(@path) / max(@n, 1) AS allocated_per_image;
