-- class: host_escape
-- description: create_file never reads the worker's files from a path
-- expect: status=succeeded
-- limits: wall_clock_seconds=20
-- needs: replicate
-- allow_writes: true
-- result: ["validation", "validation", "validation", "validation"]
local out = {}
for _, path in ipairs({"/etc/passwd", "../../etc/passwd", "~/.ssh/id_rsa", "./secrets.txt"}) do
  local ok, e = pcall(app.integrations.replicate.create_file, {content = path})
  out[#out + 1] = ok and "uploaded" or e.type
end
return table.unpack(out)
