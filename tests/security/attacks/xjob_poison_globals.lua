-- class: cross_job
-- description: replace print, json, error, pcall and _G's metatable
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
print = function() end
json = {encode = function() return "pwned" end}
error = function() end
pcall = function() return true end
setmetatable(_G, {__index = function() return "pwned" end, __newindex = function() end})
_G.app = nil
