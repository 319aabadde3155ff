-- class: c_call
-- description: a plain search that is quadratic in C (memchr + memcmp) answers at once
-- expect: status=succeeded
-- limits: instructions=20000000 wall_clock_seconds=10
-- result: [1900001, 2000001, null]
-- max_seconds: 5
local s = string.rep("a", 2000000) .. "b"
local needle = string.rep("a", 100000) .. "b"
local i, j = s:find(needle, 1, true)
return i, j, s:find(string.rep("a", 99999) .. "c")
