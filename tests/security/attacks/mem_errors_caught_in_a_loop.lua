-- class: memory
-- description: catch the memory error with pcall and allocate again
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 5
local keep = {}
for i = 1, 1000 do
  local ok = pcall(function() keep[#keep + 1] = string.rep("y", 8 * 1024 * 1024) end)
end
return "survived", #keep
