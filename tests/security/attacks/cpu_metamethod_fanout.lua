-- class: cpu
-- description: __index recursion that fans out (depth is capped by the C stack, width is not)
-- expect: status=limit_exceeded limit=instructions|memory
-- limits: instructions=2000000 memory_bytes=33554432 wall_clock_seconds=10
-- max_seconds: 5
local t
t = setmetatable({}, {__index = function(self, k)
  local a = pcall(function() return t[k] end)
  local b = pcall(function() return t[k] end)
  return a
end})
while true do pcall(function() return t.x end) end
