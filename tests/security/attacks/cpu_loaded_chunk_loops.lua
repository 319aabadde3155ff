-- class: cpu
-- description: code built at run time and loaded with load (string and reader function)
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local parts = {"local n = 0 ", "while true do ", "n = n + 1 ", "end"}
local i = 0
local f = load(function() i = i + 1 return parts[i] end)
pcall(f)
load("repeat until false")()
