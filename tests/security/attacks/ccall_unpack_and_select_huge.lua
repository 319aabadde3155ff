-- class: c_call
-- description: huge table.unpack/select/string.byte ranges are clean errors
-- expect: status=succeeded
-- limits: instructions=5000000 wall_clock_seconds=10
-- result: [false, false, false, false]
-- max_seconds: 3
local a = pcall(table.unpack, {}, 1, 2^31)
local b = pcall(table.unpack, {}, math.mininteger, math.maxinteger)
local c = pcall(select, -2^31, 1, 2)
local d = pcall(string.byte, string.rep("x", 4 * 1024 * 1024), 1, -1)
return a, b, c, d
