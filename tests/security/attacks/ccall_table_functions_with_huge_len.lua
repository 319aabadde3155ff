-- class: c_call
-- description: __len of 2^62 with C functions as __index/__newindex: insert, remove, sort, concat loop in C
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=5000000 wall_clock_seconds=10
-- max_seconds: 3
local mt = {__len = function() return 2^62 end, __index = rawlen, __newindex = rawequal}
local t = setmetatable({}, mt)
pcall(table.insert, t, 1, "x")
pcall(table.remove, t, 1)
pcall(table.sort, setmetatable({}, {__len = function() return 2^31 - 2 end, __index = rawlen, __newindex = rawequal}))
pcall(table.concat, setmetatable({}, {__len = function() return 2^40 end, __index = rawlen}))
return "not reached"
