-- class: host_escape
-- description: binary chunks are refused by load, whatever the mode and however they arrive
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [null, null, null, null]
local bytecode = "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64"
local a = load(bytecode, "x", "b")
local b = load(bytecode, "x", "bt", {})
local pieces, i = {bytecode:sub(1, 3), bytecode:sub(4)}, 0
local c = load(function() i = i + 1 return pieces[i] end, "x", "b")
local d = load(bytecode)
return a, b, c, d
