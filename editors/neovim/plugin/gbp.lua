-- gbpc in Neovim 0.7 or later: `*.gbp` files get the `gbp` filetype and `#` comments, and the
-- gbpc language server (`gbpc lsp`) is started for them with Neovim's built-in LSP client.
--
-- Install: copy this file to ~/.config/nvim/plugin/gbp.lua (or add this repository's
-- editors/neovim directory to 'runtimepath'). If gbpc is not on your PATH, set its path first:
--   vim.g.gbpc_path = vim.fn.expand("~/.cargo/bin/gbpc")
-- On Neovim 0.11 and later you may prefer vim.lsp.config/vim.lsp.enable (docs/editors.md).
if vim.g.loaded_gbpc then
  return
end
vim.g.loaded_gbpc = true

local group = vim.api.nvim_create_augroup("gbpc", { clear = true })

vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
  group = group,
  pattern = "*.gbp",
  command = "setfiletype gbp",
})

-- The nearest directory above the file that holds a .git, else the file's own directory.
local function root_dir(file)
  local dir = vim.fn.fnamemodify(file, ":p:h")
  local git = vim.fn.finddir(".git", dir .. ";")
  if git == "" then
    git = vim.fn.findfile(".git", dir .. ";") -- a worktree's .git is a file
  end
  if git ~= "" then
    return vim.fn.fnamemodify(git, ":p:h:h")
  end
  return dir
end

-- Neovim 0.7 has no vim.lsp.start: one client serves every gbp buffer.
local client_id = nil

vim.api.nvim_create_autocmd("FileType", {
  group = group,
  pattern = "gbp",
  callback = function(args)
    vim.bo[args.buf].commentstring = "# %s"
    local config = {
      name = "gbpc",
      cmd = { vim.g.gbpc_path or "gbpc", "lsp" },
      root_dir = root_dir(vim.api.nvim_buf_get_name(args.buf)),
    }
    if vim.lsp.start then
      vim.lsp.start(config)
      return
    end
    local client = client_id and vim.lsp.get_client_by_id(client_id)
    if not client or client.is_stopped() then
      client_id = vim.lsp.start_client(config)
    end
    if client_id then
      vim.lsp.buf_attach_client(args.buf, client_id)
    end
  end,
})
