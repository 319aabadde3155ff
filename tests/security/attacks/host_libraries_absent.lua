-- class: host_escape
-- description: io, os.execute/exit/getenv, package, require, dofile, loadfile, debug and string.dump are gone
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [null, null, null, null, null, null, null, null, null, null, null, null, null]
return io, os.execute, os.exit, os.getenv, os.remove, package, require, dofile, loadfile, debug, string.dump,
  ("").dump, rawget(getmetatable("").__index, "dump")
