-- A headless Neovim session with its built-in LSP client and editors/neovim/plugin/gbp.lua,
-- as a user would have it: open a policy with an error, wait for gbpc's diagnostics, apply the
-- quick fix through vim.lsp.buf.code_action() (the menu answered as a user would), format with
-- the LSP formatter, write the file, and check the file's contents.
--
-- Run by scripts/e2e-nvim.sh (GBPC, GBPC_PLUGIN and GBPC_POLICY in the environment). Prints one
-- line per check and "N passed, M failed"; exits 1 on a failure.

local gbpc = assert(os.getenv("GBPC"), "GBPC is not set")
local plugin = assert(os.getenv("GBPC_PLUGIN"), "GBPC_PLUGIN is not set")
local policy = assert(os.getenv("GBPC_POLICY"), "GBPC_POLICY is not set")
local TIMEOUT = 20000

local passed, failed = 0, 0
local function out(s)
  io.stdout:write(s .. "\n")
  io.stdout:flush()
end
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    out("ok   " .. name)
  else
    failed = failed + 1
    out("FAIL " .. name .. (detail and (": " .. vim.inspect(detail)) or ""))
  end
  return ok
end
local function finish()
  out(string.format("%d passed, %d failed", passed, failed))
  vim.cmd(failed == 0 and "qall!" or "cquit! 1")
end

local function codes(diags)
  local c = {}
  for _, d in ipairs(diags) do
    table.insert(c, tostring(d.code))
  end
  table.sort(c)
  return c
end

local function text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), "\n") .. "\n"
end

local ok, err = pcall(function()
  vim.g.gbpc_path = gbpc
  dofile(plugin)
  vim.cmd("edit " .. vim.fn.fnameescape(policy))
  local buf = vim.api.nvim_get_current_buf()
  check("the plugin gives *.gbp the gbp filetype", vim.bo.filetype == "gbp", vim.bo.filetype)
  check("# comments", vim.bo.commentstring == "# %s", vim.bo.commentstring)

  local attached = vim.wait(TIMEOUT, function()
    local clients = vim.lsp.buf_get_clients(buf)
    for _, c in pairs(clients) do
      if c.name == "gbpc" and c.initialized then
        return true
      end
    end
    return false
  end, 50)
  check("gbpc lsp starts and attaches to the buffer", attached)

  local got = vim.wait(TIMEOUT, function()
    return #vim.diagnostic.get(buf) > 0
  end, 50)
  local diags = vim.diagnostic.get(buf)
  check("diagnostics arrive", got)
  -- The typo, and the filter it leaves unused.
  check("the codes are gbpc's", vim.deep_equal(codes(diags), { "gbpc::E010", "gbpc::W001" }), codes(diags))
  local typo = nil
  for _, d in ipairs(diags) do
    if d.code == "gbpc::E010" then
      typo = d
    end
  end
  check(
    "the diagnostic is on the typo",
    typo ~= nil
      and vim.api.nvim_buf_get_lines(buf, typo.lnum, typo.lnum + 1, true)[1]:sub(typo.col + 1, typo.end_col) == "htps"
      and typo.severity == vim.diagnostic.severity.ERROR,
    typo
  )

  -- The quick fix, as a user runs it: cursor on the typo, the code-action menu, pick the fix.
  vim.api.nvim_win_set_cursor(0, { typo.lnum + 1, typo.col })
  local offered = {}
  vim.ui.select = function(items, opts, on_choice)
    for _, item in ipairs(items) do
      local title = opts.format_item and opts.format_item(item) or item[2].title
      table.insert(offered, title)
      if title:find("https", 1, true) then
        return on_choice(item)
      end
    end
    on_choice(nil)
  end
  vim.lsp.buf.code_action()
  local fixed = vim.wait(TIMEOUT, function()
    return text(buf):find("permit https", 1, true) ~= nil
  end, 50)
  check("the code action menu offers the fix and applying it edits the buffer", fixed, offered)

  local clean = vim.wait(TIMEOUT, function()
    return #vim.diagnostic.get(buf) == 0
  end, 50)
  check("after the fix the server reports nothing", clean, codes(vim.diagnostic.get(buf)))

  vim.lsp.buf.formatting_sync(nil, TIMEOUT)
  vim.cmd("silent write")
  local f = assert(io.open(policy, "rb"))
  local written = f:read("*a")
  f:close()
  local expected = table.concat({
    "tenant shop {",
    "  filter https { tcp 443 }",
    "  contract web { subject tls permit https }",
    "",
    "  group web {",
    "    select app=web",
    "    address 198.18.1.0/24",
    "    provides web",
    "  }",
    "  group client {",
    "    select app=client",
    "    address 198.18.2.0/24",
    "    consumes web",
    "  }",
    "}",
    "",
  }, "\n")
  check("the written file is fixed and formatted", written == expected, written)
  local result = vim.fn.system({ gbpc, "check", policy })
  check("gbpc check accepts the written file", vim.v.shell_error == 0, result)

  -- Tree-sitter: the grammar of editors/tree-sitter-gbp, compiled by e2e-nvim.sh into a
  -- runtimepath directory (parser/gbp.so, queries/gbp/*.scm), in Neovim's own tree-sitter.
  local tsdir = os.getenv("GBPC_TS_RTP")
  if tsdir and tsdir ~= "" then
    vim.opt.runtimepath:append(tsdir)
    local okp, parser = pcall(vim.treesitter.get_parser, buf, "gbp")
    check("Neovim loads the gbp tree-sitter parser", okp, parser)
    if okp then
      local root = parser:parse()[1]:root()
      check("the buffer parses without errors", not root:has_error(), root:sexpr())
      local get_query = vim.treesitter.query.get or vim.treesitter.query.get_query
      local okq, query = pcall(get_query, "gbp", "highlights")
      check("Neovim's query engine accepts queries/highlights.scm", okq and query ~= nil, query)
      if okq and query then
        local seen = {}
        for id, node in query:iter_captures(root, buf, 0, -1) do
          local r1, c1, r2, c2 = node:range()
          local t = vim.api.nvim_buf_get_text(buf, r1, c1, r2, c2, {})[1]
          seen[query.captures[id] .. " " .. t] = true
        end
        local want = {
          "keyword tenant", "module shop", "function https", "type.builtin tcp", "number 443",
          "type web", "label tls", "constant.builtin permit", "constructor client",
          "property app", "string web", "string.special 198.18.1.0/24", "punctuation.bracket {",
        }
        local missing = {}
        for _, w in ipairs(want) do
          if not seen[w] then
            table.insert(missing, w)
          end
        end
        check("the highlight captures are where they belong", #missing == 0, { missing = missing })
        local okh, err = pcall(vim.treesitter.highlighter.new, parser)
        check("Neovim highlights the buffer with them", okh, err)
      end
    end
  end

  for _, c in pairs(vim.lsp.buf_get_clients(buf)) do
    c.stop()
  end
  local stopped = vim.wait(TIMEOUT, function()
    return #vim.lsp.get_active_clients() == 0
  end, 50)
  check("the server stops", stopped)
end)
if not ok then
  check("the session ran to the end", false, err)
end
finish()
