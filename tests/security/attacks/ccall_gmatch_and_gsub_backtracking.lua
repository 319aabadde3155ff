-- class: c_call
-- description: gmatch and gsub with backtracking patterns, each caught by pcall
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=20000000 wall_clock_seconds=10
-- max_seconds: 5
local s = string.rep("a", 50000)
pcall(function() for m in s:gmatch("a*a*a*b") do end end)
pcall(string.gsub, s, "(a-)(a-)b", "%2")
return "not reached"
