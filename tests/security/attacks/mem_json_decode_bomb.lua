-- class: memory
-- description: json.decode of 12 MB of empty arrays (a Lua table each)
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 5
local text = "[" .. string.rep("[],", 4000000) .. "[]]"
local t = json.decode(text)
return #t
