-- class: c_call
-- description: %b and back-references rescanning a long subject
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=20000000 wall_clock_seconds=10
-- max_seconds: 5
local s = string.rep("(", 50000)
pcall(string.find, s, "%b()x")
return string.find(string.rep("ab", 30000), "(a.-)%1x")
