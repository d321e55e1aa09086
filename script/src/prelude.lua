-- Runs once in every new state, before any user code, with the real globals. It builds the
-- `redis` API, hides what scripts may not reach (io, os, print, loadfile, dofile, require,
-- debug's setters) and makes every global and every library table read-only the way Redis 7.0
-- does, then returns the internals the host uses. Chunk name "=[internal]": the error handler
-- skips these frames so errors point at the user's line.
local host = ...
local G = _G
local error, type, tostring, select, pairs, ipairs = error, type, tostring, select, pairs, ipairs
local rawset, setmetatable = rawset, setmetatable
local string_format, xpcall = string.format, xpcall
local getinfo, traceback = debug.getinfo, debug.traceback
local raw_getmetatable, getfenv, rawequal, next = debug.getmetatable, getfenv, rawequal, next

local protected = setmetatable({}, { __mode = "k" })

-- Once the instruction budget is spent, no pcall, xpcall or coroutine may swallow the error.
local over_budget = host.over_budget
local function checked(ok, ...)
  if over_budget() then
    error("script exceeded the instruction budget", 0)
  end
  return ok, ...
end
local pcall, resume = pcall, coroutine.resume
G.pcall = function(...) return checked(pcall(...)) end
G.xpcall = function(f, h) return checked(xpcall(f, h)) end
coroutine.resume = function(...) return checked(resume(...)) end

local function readonly_error()
  error("Attempt to modify a readonly table", 2)
end

local function missing_global(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- A view of `t` that reads through and refuses writes; `strict` views also refuse unknown names.
local function readonly(t, strict)
  if strict then
    setmetatable(t, { __index = missing_global })
  end
  local meta = { __index = t, __newindex = readonly_error }
  local view
  -- getmetatable(view).__index is the view itself: the real table never leaks.
  local function meta_field(_, k)
    if k == "__index" then
      return view
    end
    return meta[k]
  end
  local meta_view = setmetatable({}, { __index = meta_field, __newindex = readonly_error, __metatable = false })
  meta.__metatable = meta_view
  view = setmetatable({}, meta)
  protected[view] = true
  protected[meta_view] = true
  return view
end

G.setmetatable = function(t, m)
  if protected[t] then
    error("Attempt to modify a readonly table", 2)
  end
  return setmetatable(t, m)
end

G.rawset = function(t, k, v)
  if protected[t] then
    error("Attempt to modify a readonly table", 2)
  end
  return rawset(t, k, v)
end

-- table.insert writes raw, past __newindex: refused on the read-only views.
local table_insert = table.insert
table.insert = function(t, ...)
  if protected[t] then
    error("Attempt to modify a readonly table", 2)
  end
  return table_insert(t, ...)
end

local loadstring = loadstring
G.loadstring = function(s, name)
  if type(s) == "string" and s:byte(1) == 27 then
    return nil, "binary chunks are not allowed"
  end
  return loadstring(s, name)
end

-- redis.call / redis.pcall: argv conversion as Redis 7.0 does (numbers as %.17g).
local function command_argv(...)
  local n = select("#", ...)
  if n == 0 then
    return nil, "ERR Please specify at least one argument for this redis lib call"
  end
  local argv = { ... }
  for i = 1, n do
    local a = argv[i]
    local t = type(a)
    if t == "number" then
      argv[i] = string_format("%.17g", a)
    elseif t ~= "string" then
      return nil, "ERR Lua redis lib command arguments must be strings or integers"
    end
  end
  return argv
end

-- The host sets `host.call` for each run (the run's own store).
local function raw_call(argv)
  local reply, failed = host.call(argv)
  return reply, failed
end
local function call(...)
  local argv, err = command_argv(...)
  if not argv then
    error({ err = err })
  end
  local reply, failed = raw_call(argv)
  if failed then
    error(reply)
  end
  return reply
end

local function pcall_(...)
  local argv, err = command_argv(...)
  if not argv then
    return { err = err }
  end
  return (raw_call(argv))
end

-- Mirrors Redis's luaPushErrorBuff: "-CODE msg" keeps CODE, a message without one gets ERR.
local function error_reply(msg)
  if select("#", msg) ~= 1 or type(msg) ~= "string" then
    return { err = "ERR wrong number or type of arguments" }
  end
  if msg:sub(1, 1) == "-" then
    msg = msg:sub(2)
  end
  local space = msg:find(" ", 1, true)
  local code, text = "ERR", msg
  if space then
    code, text = msg:sub(1, space - 1), msg:sub(space + 1)
  end
  text = text:gsub("[\r\n]+$", "")
  return { err = code .. " " .. text }
end

local function status_reply(msg)
  if type(msg) ~= "string" then
    return { err = "ERR wrong number or type of arguments" }
  end
  return { ok = msg }
end

local function noop() end

local version = { REDIS_VERSION = "7.0.15", REDIS_VERSION_NUM = 0x07000f }
local levels = { LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3 }

local redis = {
  call = call,
  pcall = pcall_,
  error_reply = error_reply,
  status_reply = status_reply,
  sha1hex = function(...)
    if select("#", ...) ~= 1 then
      error({ err = "ERR wrong number of arguments" })
    end
    -- As lua_tolstring: strings and numbers; anything else hashes as "" (never an address).
    local s = ...
    local t = type(s)
    return host.sha1hex((t == "string" or t == "number") and tostring(s) or "")
  end,
  log = noop,
  setresp = function(v)
    if v ~= 2 and v ~= 3 then
      error("RESP version must be 2 or 3.", 2)
    end
  end,
  set_repl = noop,
  replicate_commands = function() return true end,
  breakpoint = function() return false end,
  debug = noop,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
}

local function_flags = { ["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
  ["no-cluster"] = true, ["allow-cross-slot-keys"] = true }

local function register_fail(msg)
  error({ err = "ERR " .. msg })
end

local function named_flags(flags)
  if type(flags) ~= "table" then
    register_fail("flags argument to redis.register_function must be a table representing function flags")
  end
  local list = {}
  for _, flag in ipairs(flags) do
    if not function_flags[flag] then
      register_fail("unknown flag given")
    end
    list[#list + 1] = flag
  end
  return list
end

local named_checks = {
  function_name = { "string", "function_name argument given to redis.register_function must be a string" },
  callback = { "function", "callback argument given to redis.register_function must be a function" },
  description = { "string", "description argument given to redis.register_function must be a string" },
}

-- Reads register_function's two forms: (name, callback) or { function_name=, callback=, flags=, description= }.
local function register_args(...)
  local n = select("#", ...)
  local a, b = ...
  if n == 2 then
    if type(a) ~= "string" then register_fail("first argument to redis.register_function must be a string") end
    if type(b) ~= "function" then register_fail("second argument to redis.register_function must be a function") end
    return a, b, {}, nil
  end
  if n ~= 1 then register_fail("wrong number of arguments to redis.register_function") end
  if type(a) ~= "table" then
    register_fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
  end
  local flags = {}
  for k, v in pairs(a) do
    if type(k) ~= "string" then register_fail("named argument key given to redis.register_function is not a string") end
    local check = named_checks[k]
    if k == "flags" then
      flags = named_flags(v)
    elseif not check then
      register_fail("unknown argument given to redis.register_function")
    elseif type(v) ~= check[1] then
      register_fail(check[2])
    end
  end
  if a.function_name == nil then register_fail("redis.register_function must get a function name argument") end
  if a.callback == nil then register_fail("redis.register_function must get a callback argument") end
  return a.function_name, a.callback, flags, a.description
end

-- FUNCTION LOAD: the library chunk sees only this API; register_function works only while loading.
local loading = false
local registered = {}
local load_redis = { log = noop, register_function = function(...)
  if not loading then
    error("redis.register_function can only be called on FUNCTION LOAD command", 2)
  end
  local name, callback, flags, description = register_args(...)
  if type(name) ~= "string" or name == "" or name:find("[^%w_]") then
    error({ err = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long" })
  end
  if registered[name] then
    error({ err = "ERR Function already exists in the library" })
  end
  registered[name] = { callback = callback, flags = flags, description = description }
end }
for k, v in pairs(version) do redis[k] = v; load_redis[k] = v end
for k, v in pairs(levels) do redis[k] = v; load_redis[k] = v end

local hidden = {}
for k, v in pairs(G) do
  hidden[k] = v
end
for k in pairs(hidden) do
  G[k] = nil
end
for _, name in ipairs({ "print", "loadfile", "dofile", "require", "module", "package", "io", "os", "gcinfo" }) do
  hidden[name] = nil
end
hidden.debug = { getinfo = getinfo, traceback = traceback }
hidden.redis = redis
for _, name in ipairs({ "redis", "string", "table", "math", "bit", "cjson", "cmsgpack", "coroutine", "debug" }) do
  if hidden[name] then
    hidden[name] = readonly(hidden[name])
  end
end
hidden._G = G
-- Strings index the read-only string view, and getmetatable("") shows a read-only copy.
local string_meta = raw_getmetatable("")
string_meta.__index = hidden.string
string_meta.__metatable = readonly({ __index = hidden.string })
local globals = readonly(hidden, true)
local load_globals = readonly({ redis = readonly(load_redis, true) }, true)

local g_meta = { __index = globals, __newindex = readonly_error }
g_meta.__metatable = readonly(g_meta)
setmetatable(G, g_meta)
protected[G] = true

-- The error handler turns any error into Redis's error table with the user's source and line.
local function handler(err)
  local level = 2
  local info = getinfo(level, "Sl")
  while info and (info.what == "C" or info.source == "=[internal]") do
    level = level + 1
    info = getinfo(level, "Sl")
  end
  -- `return redis.call(…)` is a tail call: the user's frame is gone, so no position is known.
  if info and info.what == "tail" then
    info = nil
  end
  if type(err) ~= "table" then
    err = { err = "ERR " .. tostring(err) }
  end
  if info then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end

local function run(f, a, b)
  return xpcall(function() return f(a, b) end, handler)
end

local internals = {}

-- Runs a library chunk in the load environment; returns ok and the error table or nothing.
function internals.load_library(chunk)
  registered = {}
  g_meta.__index = load_globals
  loading = true
  local ok, err = run(chunk)
  loading = false
  g_meta.__index = globals
  return ok, err
end

function internals.registered()
  return registered
end

function internals.set_global(name, value)
  rawset(hidden, name, value)
end

internals.run = run

-- A state serves many runs, so no run may change what the next one starts from. Scripts cannot
-- create globals, and reach the library tables only through read-only views (getmetatable of a
-- view gives the view, strings index the string view, rawset, setmetatable and table.insert
-- refuse the views). Every table reachable from the globals is recorded here, with its
-- metatable and the environments of the functions in it; `intact` checks them (tests run it
-- after scripts that try to change the state; it is too slow for every run).
local recorded = {}
local environments = {}
local function record(value)
  if type(value) == "function" then
    environments[value] = getfenv(value)
  end
  if type(value) ~= "table" or recorded[value] then
    return
  end
  local copy, count = {}, 0
  recorded[value] = { copy = copy, meta = raw_getmetatable(value) }
  for k, v in next, value do
    copy[k] = v
    count = count + 1
  end
  recorded[value].count = count
  for k, v in next, value do
    record(k)
    record(v)
  end
  record(raw_getmetatable(value))
end
record(G)
record(load_globals)
record(raw_getmetatable(""))

local function unchanged(t, r)
  if not rawequal(raw_getmetatable(t), r.meta) then
    return false
  end
  local copy, count = r.copy, 0
  for k, v in next, t do
    if not rawequal(copy[k], v) then
      return false
    end
    count = count + 1
  end
  return count == r.count
end

-- Ends a run: KEYS and ARGV go (a function must not see the last script's); whether the
-- thread's environment is still the globals (setfenv(0, …) would change it).
function internals.end_run()
  rawset(hidden, "KEYS", nil)
  rawset(hidden, "ARGV", nil)
  return rawequal(getfenv(0), G)
end

-- Whether every recorded table, metatable and environment is as the prelude left it.
function internals.intact()
  for f, env in next, environments do
    if not rawequal(getfenv(f), env) then
      return false
    end
  end
  for t, r in next, recorded do
    if not unchanged(t, r) then
      return false
    end
  end
  return true
end

return internals
