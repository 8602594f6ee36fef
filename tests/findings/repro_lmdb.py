# sharded lmdb: a scan open across writes inside a SAVEPOINT reports intact rows as damaged (stale pixels/checksum)
from common import *
import os
P = f'{WORK}/rl'; os.system(f'rm -rf {P}')
shards = sys.argv[1] if len(sys.argv) > 1 else '4'
v = sys.argv[2] if len(sys.argv) > 2 else 'full'
con = connect()
con.execute(f"CREATE VIRTUAL TABLE temp.t USING lmdb(path='{P}', shape='8x8x3', shards={shards}, threads=1)")
con.execute("INSERT INTO t SELECT * FROM synthetic(1500, '8x8x3', 1)")
if 'a' in v: con.execute("DELETE FROM t WHERE id % 2 = 1")
con.execute("SAVEPOINT s")
if 'b' in v: con.execute("UPDATE t SET label = label + 1 WHERE id % 3 = 0")
c = con.cursor(); c.execute("SELECT id, label, CASE WHEN id > 700 THEN pixels ELSE NULL END FROM t")
con.execute("INSERT INTO t SELECT id+2559, label, pixels FROM synthetic(50, '8x8x3', 1)")
c.fetchmany(426)
if 'c' in v: con.execute("DELETE FROM t WHERE id % 3 = 1")
con.execute("UPDATE t SET label = label + 1 WHERE id % 2 = 0")
try: print(shards, v, "rows", len(c.fetchall()))
except sqlite3.Error as e: print(shards, v, "ERROR", e)
