-- class: memory
-- description: print a 16 MiB string a hundred times (host copies that max_memory does not count)
-- expect: status=limit_exceeded limit=output
-- limits: memory_bytes=67108864 output_bytes=1048576 wall_clock_seconds=10
-- max_seconds: 5
local s = string.rep("z", 16 * 1024 * 1024)
for i = 1, 100 do pcall(print, s) end
