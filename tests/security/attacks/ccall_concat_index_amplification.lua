-- class: c_call
-- description: table.concat over 2^40 indexes whose values come from __index = tostring
-- expect: status=limit_exceeded limit=instructions|memory
-- limits: instructions=20000000 memory_bytes=33554432 wall_clock_seconds=10
-- max_seconds: 5
local t = setmetatable({}, {__index = tostring})
return #table.concat(t, "", 1, 2^40)
