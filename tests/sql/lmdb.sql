-- LMDB-specific behaviour: paths that are not stores, interop with LMDB's own tools with their defaults, the
-- map growing, checksums, stores made atomically, old single-file stores (format 1).

-- error: table d: path '.' is a directory without data.mdb; expected an lmdb store
CREATE VIRTUAL TABLE d USING lmdb(path='.', shape='2x2x1');
-- shell: printf 'this is not a database, just text that is long enough to look like one...%.0s' $(seq 200) > junk.lmdb
-- error: table j: 'junk.lmdb' is not an LMDB file
CREATE VIRTUAL TABLE j USING lmdb(path='junk.lmdb', shape='2x2x1');
-- shell: /usr/bin/python3 -c "import lmdb; e = lmdb.open('plain.lmdb', subdir=False); t = e.begin(write=True); t.put(b'k', b'v'); t.commit()"
-- error: table p: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE p USING lmdb(path='plain.lmdb', shape='2x2x1');
-- shell: /usr/bin/python3 -c "import lmdb; e = lmdb.open('plaindir.lmdb'); t = e.begin(write=True); t.put(b'k', b'v'); t.commit()"
-- error: table pd: 'plaindir.lmdb' is an LMDB environment but not an imgstore store (no .imgstore reading 'imgstore-lmdb 2' and its shape)
CREATE VIRTUAL TABLE pd USING lmdb(path='plaindir.lmdb', shape='2x2x1');

-- error: table np: making the store 'no/such/x.lmdb': cannot make 'no/such/x.lmdb.imgstore-new-
CREATE VIRTUAL TABLE np USING lmdb(path='no/such/x.lmdb', shape='2x2x1');

-- A new store is an LMDB environment directory in LMDB's default layout, its description beside data.mdb.
CREATE VIRTUAL TABLE t USING lmdb(path='t.lmdb', shape='4x3x2');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO t SELECT i, i % 10, randomblob(24) FROM n;
CREATE TABLE ref AS SELECT * FROM t;
-- shell: ls -A t.lmdb | tr '\n' ' '; cat t.lmdb/.imgstore | tr '\n' '|'
-- shell-expect: .imgstore data.mdb lock.mdb imgstore-lmdb 2|shape=4x3x2|
-- mdb_stat and mdb_dump read it with their defaults: the main database holds the 500 images and nothing else.
-- shell: mdb_stat t.lmdb | sed -n 's/ *Entries: //p'
-- shell-expect: 500
-- shell: mdb_dump t.lmdb | grep -c '^ '
-- shell-expect: 1000
-- The documented layout, as py-lmdb reads it with its defaults: key = 8-byte big-endian id, value = 8-byte
-- little-endian label, 8-byte checksum, pixels.
-- shell: /usr/bin/python3 -c "import lmdb, struct; e = lmdb.open('t.lmdb', readonly=True); v = e.begin().get(struct.pack('>q', 123)); open('v123.hex', 'w').write('%d|%s' % (struct.unpack('<q', v[:8])[0], v[16:].hex().upper()))"
-- expect: 1
SELECT CAST(readfile('v123.hex') AS TEXT) = (SELECT label || '|' || hex(pixels) FROM t WHERE id = 123);
-- shell: /usr/bin/python3 -c "import lmdb; e = lmdb.open('t.lmdb', readonly=True); print(sum(1 for k, v in e.begin().cursor() if len(k) == 8 and len(v) == 16 + 24))"
-- shell-expect: 500
-- disk_usage and file_bytes of a store count every file in its directory.
-- shell: echo $(( $(stat -c %s t.lmdb/data.mdb) + $(stat -c %s t.lmdb/lock.mdb) + $(stat -c %s t.lmdb/.imgstore) )) > sizes.txt
-- expect: 1|1
SELECT file_bytes('t.lmdb') = CAST(readfile('sizes.txt') AS INTEGER), disk_usage('t.lmdb') > disk_usage('t.lmdb/data.mdb');

-- A second path to the same file (a symlink) shares the one environment of this process.
-- shell: ln -s t.lmdb link.lmdb
CREATE VIRTUAL TABLE t2 USING lmdb(path='link.lmdb');
INSERT INTO t2 VALUES (1000, 1, randomblob(24));
-- expect: 501
SELECT count(*) FROM t;
DELETE FROM t WHERE id = 1000;

-- A reader in another process sees committed rows, and keeps its snapshot while this one writes.
BEGIN;
INSERT INTO t VALUES (2000, 1, randomblob(24));
-- expect: 501
SELECT count(*) FROM t;
-- expect: 500
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE x USING lmdb(path='t.lmdb'); SELECT count(*) FROM x;"
COMMIT;
-- expect: 501
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE x USING lmdb(path='t.lmdb'); SELECT count(*) FROM x;"

-- The map grows by itself: with a 1 MiB starting map (a test hook; users never set it), 10 MB go in.
-- shell: IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb', shape='32x32x3'); WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n; WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM n WHERE i < 2599) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n WHERE i % 100 = 0; SELECT count(*) FROM g;" >/dev/null && for k in $(seq 1 24); do IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb'); WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) INSERT INTO g SELECT 100000 + $k * 1000 + i, 0, randomblob(3072) FROM n;" || exit 1; done; IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb'); SELECT count(*) FROM g;"
-- shell-expect: 2525
-- One transaction far larger than the map (1 MiB here; a shipped build reserves 1 TiB of address space,
-- lmdb_env.hpp) fails with a clear SQLITE_FULL and leaves nothing behind; the map grows with the file, so the
-- same transaction run again succeeds.
-- shell: printf "%s\n" ".load {extension}" "CREATE VIRTUAL TABLE g USING lmdb(path='big.lmdb', shape='32x32x3');" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after failure', count(*) FROM g;" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after retry', count(*) FROM g;" | IMGSTORE_LMDB_MAP_MIN=1048576 stdbuf -o0 sqlite3 -batch :memory: 2>&1 | sed 's/near line [0-9]*: //' | tr '\n' ' '
-- shell-expect: Runtime error table g: the LMDB map of 'big.lmdb' (1 MiB) filled up in this transaction; it was rolled back and the map grows before the next one: run it again (in smaller transactions if it keeps failing) (13) after failure|0 after retry|1000

-- A data file cut short is refused before LMDB maps it (LMDB itself would fault on the missing pages).
-- shell: mkdir cut.lmdb && head -c 12288 t.lmdb/data.mdb > cut.lmdb/data.mdb && cp t.lmdb/.imgstore cut.lmdb/
-- error: table cut: 'cut.lmdb/data.mdb' is not a usable LMDB file: it is 12288 bytes but its meta page says a B-tree starts at page
CREATE VIRTUAL TABLE cut USING lmdb(path='cut.lmdb');
-- expect: 1
SELECT imgstore_check('lmdb', 'cut.lmdb') LIKE '%(truncated)%';

-- imgstore_check reaches a store whose path holds quotes, one or two in a row.
CREATE VIRTUAL TABLE q1 USING lmdb(path='it''s.lmdb', shape='2x2x1');
INSERT INTO q1 VALUES (1, 2, zeroblob(4));
CREATE VIRTUAL TABLE q2 USING lmdb(path='two''''quotes.lmdb', shape='2x2x1');
INSERT INTO q2 VALUES (1, 2, zeroblob(4));
-- expect: ok|ok
SELECT imgstore_check('lmdb', 'it''s.lmdb', 1), imgstore_check('lmdb', 'two''''quotes.lmdb', 1);

-- A meta page whose last page number is so large that (last + 1) * page size wraps around 2^64 is refused as
-- damaged, not let through by an overflow (LMDB would then map the file as if it were that large).
-- shell: for last in wrap max; do mkdir huge-$last.lmdb && cp t.lmdb/.imgstore huge-$last.lmdb/ && /usr/bin/python3 -c "import struct, sys; d = bytearray(open('t.lmdb/data.mdb', 'rb').read()); ps = struct.unpack_from('<I', d, 40)[0]; last = 2**64 // ps - 1 if sys.argv[1] == 'wrap' else 2**64 - 1; [struct.pack_into('<Q', d, m * ps + 136, last) for m in (0, 1)]; open('huge-' + sys.argv[1] + '.lmdb/data.mdb', 'wb').write(d)" $last || exit 1; done
-- error: table hw: 'huge-wrap.lmdb/data.mdb' is not a usable LMDB file: its meta page names page 4503599627370495 as its last, more than 2^40 pages (damaged)
CREATE VIRTUAL TABLE hw USING lmdb(path='huge-wrap.lmdb');
-- error: table hm: 'huge-max.lmdb/data.mdb' is not a usable LMDB file: its meta page names page 18446744073709551615 as its last
CREATE VIRTUAL TABLE hm USING lmdb(path='huge-max.lmdb');
-- expect: 1|1
SELECT imgstore_check('lmdb', 'huge-wrap.lmdb') LIKE '%(damaged)%', imgstore_check('lmdb', 'huge-max.lmdb') LIKE '%(damaged)%';

-- Reading never writes: a failed open leaves the directory as it was (no lock file left beside a text file, a
-- PNG, an LMDB file or environment of another program or a store opened with the wrong shape).
-- shell: printf 'just some text, not a database at all...%.0s\n' $(seq 20) > x.txt
-- error: table x: 'x.txt' is not an LMDB file
CREATE VIRTUAL TABLE x USING lmdb(path='x.txt');
-- expect: 1
SELECT writefile('p.png', png_encode(randomblob(3072), '32x32x3')) > 3000;
-- error: table xp: 'p.png' is not an LMDB file
CREATE VIRTUAL TABLE xp USING lmdb(path='p.png');
-- shell: rm plain.lmdb-lock plaindir.lmdb/lock.mdb && $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE s USING lmdb(path='shaped.lmdb', shape='2x2x1')" && rm shaped.lmdb/lock.mdb
-- error: table xl: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE xl USING lmdb(path='plain.lmdb');
-- error: table xd: 'plaindir.lmdb' is an LMDB environment but not an imgstore store
CREATE VIRTUAL TABLE xd USING lmdb(path='plaindir.lmdb');
-- error: table xs: shape '3x3x1' disagrees with the store 'shaped.lmdb'
CREATE VIRTUAL TABLE xs USING lmdb(path='shaped.lmdb', shape='3x3x1');
-- shell: test ! -e x.txt-lock
-- shell: test ! -e p.png-lock
-- shell: test ! -e plain.lmdb-lock
-- shell: test ! -e plaindir.lmdb/lock.mdb
-- shell: test ! -e shaped.lmdb/lock.mdb
-- A lock file that was there before a failed open stays.
-- shell: touch plain.lmdb-lock
-- error: table xl: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE xl USING lmdb(path='plain.lmdb');
-- shell: test -e plain.lmdb-lock

-- A cursor that fails in its constructor (here: the first row of the scan or lookup is damaged) gives back
-- its read snapshot. It used to keep it counted, and since the map only grows while this process reads
-- nothing, the map never grew again: every later transaction too large for the map failed. Here the 1000-row
-- insert fills the 1 MiB map once, and its retry succeeds.
-- shell: IMGSTORE_LMDB_MAP_MIN=1048576 $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='lease.lmdb', shape='32x32x3')" && /usr/bin/python3 -c "import lmdb, struct; e = lmdb.open('lease.lmdb'); t = e.begin(write=True); t.put(struct.pack('>q', 0), b'bad'); t.commit()"
-- shell: printf "%s\n" ".load {extension}" "CREATE VIRTUAL TABLE g USING lmdb(path='lease.lmdb');" "SELECT id FROM g;" "SELECT id FROM g WHERE id = 0;" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after retry', count(*) FROM g WHERE id > 0;" | IMGSTORE_LMDB_MAP_MIN=1048576 stdbuf -o0 $SQLITE3 -batch :memory: 2>&1 | sed 's/near line [0-9]*: //' | tr '\n' ' '
-- shell-expect: Runtime error table g: the value of id 0 in 'lease.lmdb/data.mdb' is 3 bytes; expected 3088 (8-byte label, 8-byte checksum, pixels) (11) Runtime error table g: the value of id 0 in 'lease.lmdb/data.mdb' is 3 bytes; expected 3088 (8-byte label, 8-byte checksum, pixels) (11) Runtime error table g: the LMDB map of 'lease.lmdb' (1 MiB) filled up in this transaction; it was rolled back and the map grows before the next one: run it again (in smaller transactions if it keeps failing) (13) after retry|1000

-- verify: 0 or 1 only. A damaged image (its pixels changed behind the store's back) is SQLITE_CORRUPT for every
-- read of its pixels and named by imgstore_check; its label alone is still served; verify=0 serves its bytes.
-- error: table v: argument verify='yes' is not valid; expected an integer from 0 to 1
CREATE VIRTUAL TABLE v USING lmdb(path='t.lmdb', verify='yes');
-- error: table v: argument verify='2' is not valid; expected an integer from 0 to 1
CREATE VIRTUAL TABLE v USING lmdb(path='t.lmdb', verify=2);
CREATE VIRTUAL TABLE dmg USING lmdb(path='dmg.lmdb', shape='8x8x3');
INSERT INTO dmg SELECT * FROM synthetic(40, '8x8x3', 5);
-- shell: /usr/bin/python3 -c "import lmdb, struct; e = lmdb.open('dmg.lmdb'); t = e.begin(write=True); k = struct.pack('>q', 17); v = bytearray(t.get(k)); v[16 + 100] ^= 0x40; t.put(k, bytes(v)); t.commit()"
-- expect: 1
SELECT label = (SELECT label FROM synthetic(40, '8x8x3', 5) WHERE id = 17) FROM dmg WHERE id = 17;
-- error: table dmg: image 17 in 'dmg.lmdb/data.mdb' is damaged: its checksum does not match (stored 0x
SELECT pixels FROM dmg WHERE id = 17;
-- error: table dmg: image 17 in 'dmg.lmdb/data.mdb' is damaged
SELECT sum(length(pixels)) FROM dmg;
-- error: table dmg: image 17 in 'dmg.lmdb/data.mdb' is damaged
SELECT count(*) FROM dmg WHERE id IN (3, 17, 30) AND length(pixels) > 0;
-- A new label changes only the checksum's label term: the image stays refused, not vouched for.
UPDATE dmg SET label = 1 WHERE id = 17;
-- error: table dmg: image 17 in 'dmg.lmdb/data.mdb' is damaged
SELECT pixels FROM dmg WHERE id = 17;
-- expect: 39
SELECT count(*) FROM dmg WHERE id <> 17 AND length(pixels) = 192;
-- expect: 1
SELECT imgstore_check('lmdb', 'dmg.lmdb', 1) LIKE 'image 17 in ''dmg.lmdb/data.mdb'' is damaged: its checksum does not match (stored 0x%, computed 0x%)';
CREATE VIRTUAL TABLE raw USING lmdb(path='dmg.lmdb', verify=0);
-- expect: 40|7680
SELECT count(*), sum(length(pixels)) FROM raw;
-- A replaced image has a new checksum: the store is sound again.
INSERT OR REPLACE INTO dmg SELECT * FROM synthetic(40, '8x8x3', 5) WHERE id = 17;
-- expect: ok
SELECT imgstore_check('lmdb', 'dmg.lmdb', 1);

-- A store is made whole or not at all: killed while making it (test hooks), the path holds nothing and the next
-- CREATE makes it, removing the dead makers' temporaries (each maker removes the ones before it).
-- shell: { for at in make-env make-before-rename; do IMGSTORE_LMDB_KILL_AT=$at $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE k USING lmdb(path='killed.lmdb', shape='2x2x1')"; test $? = 137 || exit 1; test ! -e killed.lmdb || exit 1; done; } 2>/dev/null; ls -d killed.lmdb.imgstore-new-* | wc -l
-- shell-expect: 1
CREATE VIRTUAL TABLE k USING lmdb(path='killed.lmdb', shape='2x2x1');
INSERT INTO k VALUES (1, 1, x'01020304');
-- shell: ls -d killed.lmdb* | tr '\n' ' '
-- shell-expect: killed.lmdb
-- Four processes making one store at once: one makes it, the others open it, every row goes in.
-- shell: for w in 1 2 3 4; do $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE r USING lmdb(path='race.lmdb', shape='2x2x1', timeout=30000); WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) INSERT INTO r SELECT $w * 1000 + i, $w, randomblob(4) FROM n;" & done; wait; ls -d race.lmdb* | tr '\n' ' '
-- shell-expect: race.lmdb
CREATE VIRTUAL TABLE race USING lmdb(path='race.lmdb');
-- expect: 400|10|ok
SELECT count(*), sum(DISTINCT label), imgstore_check('lmdb', 'race.lmdb', 1) FROM race;

-- Old stores (format 1: one file and its -lock file, named databases, no checksums; tests/lmdb_v1.py writes them as
-- earlier versions did) open, read and write in their own format, and INSERT ... SELECT converts them.
-- shell: /usr/bin/python3 {tests}/lmdb_v1.py make old.lmdb 4x3x2 300
CREATE VIRTUAL TABLE old USING lmdb(path='old.lmdb');
-- expect: 300|4x3x2
SELECT count(*), (SELECT shape FROM imgstore_info('old')) FROM old;
-- expect: 7|7778797A
SELECT label, hex(substr(pixels, 1, 4)) FROM old WHERE id = 17;
BEGIN;
INSERT INTO old SELECT id + 1000, label, pixels FROM old WHERE id < 50;
UPDATE old SET label = label + 100 WHERE id % 3 = 0;
DELETE FROM old WHERE id % 7 = 0;
COMMIT;
-- shell: /usr/bin/python3 {tests}/lmdb_v1.py values old.lmdb
-- shell-expect: 300 images, value sizes [32]
-- expect: ok
SELECT imgstore_check('lmdb', 'old.lmdb', 1);
CREATE VIRTUAL TABLE new USING lmdb(path='new.lmdb', shape='4x3x2');
INSERT INTO new SELECT * FROM old;
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM new) = (SELECT image_digest(id, label, pixels) FROM old);
-- shell: test -d new.lmdb && mdb_stat new.lmdb | sed -n 's/ *Entries: //p'
-- shell-expect: 300
-- A sharded folder whose shards are single files (format 1, as earlier versions made them) opens, reads and
-- writes; new sharded tables get shard directories.
CREATE VIRTUAL TABLE sh USING lmdb(path='sh', shape='4x3x2', shards=2);
INSERT INTO sh SELECT * FROM old;
-- shell: ls -F sh | tr '\n' ' '
-- shell-expect: manifest.json shard-000.lmdb/ shard-001.lmdb/ writer.lock
DROP TABLE sh;
-- shell: for s in 000 001; do /usr/bin/python3 {tests}/lmdb_v1.py from sh/shard-$s.lmdb sh/v1 && rm -r sh/shard-$s.lmdb && mv sh/v1 sh/shard-$s.lmdb && rm sh/v1-lock || exit 1; done; ls -F sh | tr '\n' ' '
-- shell-expect: manifest.json shard-000.lmdb shard-001.lmdb writer.lock
CREATE VIRTUAL TABLE sh USING lmdb(path='sh');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM sh) = (SELECT image_digest(id, label, pixels) FROM old);
INSERT INTO sh VALUES (5000, 1, zeroblob(24)), (5001, 2, zeroblob(24));
-- expect: 302|ok
SELECT count(*), imgstore_check('lmdb', 'sh', 1) FROM sh;
-- shell: /usr/bin/python3 {tests}/lmdb_v1.py values sh/shard-000.lmdb
-- shell-expect: 151 images, value sizes [32]
