-- class: python_escape
-- description: errors from host functions are strings or plain tables, never Python exception objects
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: ["string", "string", "string", "string", "string", "string", "string"]
local kinds = {}
local function kind(ok, e) kinds[#kinds + 1] = type(e) end
kind(pcall(json.decode, 42))
kind(pcall(json.encode, print))
kind(pcall(regex.gsub, "a", "a", {}))
kind(pcall(regex.split, "a", "a", -1))
kind(pcall(docs.read, nil))
kind(pcall(sleep, "long"))
kind(pcall(print, setmetatable({}, {__tostring = function() return {} end})))
return table.unpack(kinds)
