-- class: python_escape
-- description: hostile arguments to every host-backed function fail cleanly (no crash, no Python error text)
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- not_output_contains: Traceback
-- not_output_contains: .py
local weird = {nil, true, 1.5, -1, 2^63, 0/0, "", print, coroutine.create(print), setmetatable({}, {__index = error}), {1, {2}}}
local targets = {
  json.encode, json.decode, json.object, json.array, regex.match, regex.match_all, regex.gsub, regex.split,
  docs.read, docs.search, docs.list, lua_read_doc, sleep, dump, string.rep, string.find, string.gsub, table.concat,
}
for _, f in ipairs(targets) do
  for _, a in ipairs(weird) do
    for _, b in ipairs(weird) do
      local ok, err = pcall(f, a, b, a)
      if not ok then print(tostring(err)) end
    end
  end
end
