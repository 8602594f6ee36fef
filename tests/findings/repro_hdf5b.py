# hdf5: scan open across an autocommit INSERT, then a SAVEPOINT with DELETE + INSERT OR REPLACE: torn rows
from common import *
import os
backend = sys.argv[1]; variant = sys.argv[2]; sh = sys.argv[3] if len(sys.argv) > 3 else ''
P = f'{WORK}/repro2.{backend}'; os.system(f'rm -rf {P}')
con = connect()
con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{P}', shape='8x8x3', threads=1 {sh})")
con.execute("INSERT INTO t SELECT * FROM synthetic(1500, '8x8x3', 1)")
old = {i: (l, bytes(p)) for i, l, p in con.execute("SELECT * FROM t")}
new = {i+486: (l+5, bytes(p)) for i, l, p in con.execute("SELECT * FROM synthetic(30, '8x8x3', 6)")}
c = con.cursor(); c.execute("SELECT id, label, pixels FROM t WHERE id > 200")
if 'i' in variant: con.execute("INSERT INTO t VALUES (5000, 0, zeroblob(192))")
c.fetchmany(163)
if 's' in variant: con.execute("SAVEPOINT s")
if 'd' in variant: con.execute("DELETE FROM t WHERE id % 3 = 1")
con.execute("INSERT OR REPLACE INTO t SELECT id+486, label+5, pixels FROM synthetic(30, '8x8x3', 6)")
bad = []
try: rest = c.fetchall()
except sqlite3.Error as e: print(backend, variant, sh, "ERROR:", e); rest = []
for i, l, p in rest:
    if i < 1500 and (l, bytes(p)) not in (old.get(i), new.get(i)): bad.append((i, l, old[i][0], new.get(i, (None,))[0], bytes(p) == old[i][1]))
print(backend, variant, sh, "bad rows:", len(bad), "e.g. (id, got label, old label, new label, pixels==old)", bad[:3])
if 's' in variant: con.execute("RELEASE s")
print("after:", con.execute("SELECT count(*) FROM t").fetchone(), con.execute("SELECT count(*) FROM (SELECT * FROM t)").fetchone())
con.close()
con = connect(); print("check:", con.execute("SELECT imgstore_check(?, ?, 1)", (backend, P)).fetchone())
