-- class: c_call
-- description: several lazy quantifiers in a row, through the string metatable
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=20000000 wall_clock_seconds=10
-- max_seconds: 5
local s = string.rep("a", 30000)
return s:match(".-.-.-.-.-b")
