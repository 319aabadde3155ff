-- class: host_escape
-- description: package.loadlib on lupa's own library (it exports luaopen_io/luaopen_os) is unreachable
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [false, false, false]
local a = pcall(function() return package.loadlib("lupa/lua54.so", "luaopen_io") end)
local b = pcall(function() return require("io") end)
local c = pcall(function() return _G.package.loaded.io end)
return a, b, c
