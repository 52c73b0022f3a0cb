#Requires -RunAsAdministrator
<#
.SYNOPSIS
  Removes Portico from this computer.
.DESCRIPTION
  Stops and removes the portico-gateway service, the portico:// handler of
  the current user, the Start menu shortcut and the programs. The data in
  %ProgramData%\Portico (configuration, users, keys, admin token, audit
  log) is kept unless -Purge is given.
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File "$env:ProgramFiles\Portico\uninstall.ps1" -Purge
#>
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'Portico'),
    [string]$DataDir = (Join-Path $env:ProgramData 'Portico'),
    [switch]$Purge
)
$ErrorActionPreference = 'Stop'
$gateway = Join-Path $InstallDir 'portico-gateway.exe'

if (Get-Service -Name 'portico-gateway' -ErrorAction SilentlyContinue) {
    & $gateway stop
    & $gateway uninstall
    if ($LASTEXITCODE -ne 0) { throw "portico-gateway uninstall failed with exit code $LASTEXITCODE" }
}
$client = Join-Path $InstallDir 'portico-client.exe'
if (Test-Path $client) {
    & $client unregister
}
Remove-Item -Force -ErrorAction SilentlyContinue (Join-Path $env:ProgramData 'Microsoft\Windows\Start Menu\Programs\Portico Admin.lnk')
# This script lives in $InstallDir: PowerShell has read it already.
Remove-Item -Recurse -Force -Path $InstallDir
if ($Purge) {
    Remove-Item -Recurse -Force -Path $DataDir
    Write-Host "Portico and its data are removed."
} else {
    Write-Host "Portico is removed; its data stays in $DataDir (uninstall.ps1 -Purge deletes it)."
}
