-- class: cross_job
-- description: rewrite the string metatable, the string table and string methods
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
local mt = getmetatable("")
mt.__index = {upper = function() return "pwned" end}
mt.__add = function() return "pwned" end
string.upper = function() return "pwned" end
string.format = nil
rawset(string, "find", function() return 1 end)
return ("x"):upper()
