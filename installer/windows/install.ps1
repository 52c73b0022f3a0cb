#Requires -RunAsAdministrator
<#
.SYNOPSIS
  Installs or upgrades Portico on this computer.
.DESCRIPTION
  Copies the programs to Program Files, creates the data directory
  (%ProgramData%\Portico, readable by Administrators and SYSTEM only),
  installs and starts the Windows service "portico-gateway" (it runs as
  LocalSystem and logs to the Application Event Log, source
  portico-gateway), registers the portico:// URL handler for the current
  user and adds a Start menu shortcut for the admin GUI. Running it again
  upgrades the programs and keeps the data.
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File .\install.ps1
#>
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'Portico'),
    [string]$DataDir = (Join-Path $env:ProgramData 'Portico')
)
$ErrorActionPreference = 'Stop'
$service = 'portico-gateway'
$gateway = Join-Path $InstallDir 'portico-gateway.exe'

function Invoke-Checked([string]$exe, [string[]]$arguments) {
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) {
        throw "$exe $($arguments -join ' ') failed with exit code $LASTEXITCODE"
    }
}

# An upgrade stops the running service before its program is replaced.
$existing = Get-Service -Name $service -ErrorAction SilentlyContinue
if ($existing -and $existing.Status -ne 'Stopped') {
    Stop-Service -Name $service
    $existing.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
}

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
foreach ($f in 'portico-gateway.exe', 'portico-admin.exe', 'portico-client.exe', 'uninstall.ps1', 'README.txt') {
    Copy-Item -Force -Path (Join-Path $PSScriptRoot $f) -Destination $InstallDir
}

# The data directory holds the store, keys and the admin token: full
# control for SYSTEM (the service) and Administrators, nothing inherited,
# nobody else. Existing files keep their contents.
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
$acl = New-Object System.Security.AccessControl.DirectorySecurity
$acl.SetAccessRuleProtection($true, $false)
foreach ($sid in 'S-1-5-18', 'S-1-5-32-544') {
    $who = New-Object System.Security.Principal.SecurityIdentifier($sid)
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
    $acl.AddAccessRule($rule)
}
$acl.SetOwner((New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-544')))
Set-Acl -Path $DataDir -AclObject $acl
Get-ChildItem -Path $DataDir -Recurse -Force | ForEach-Object {
    $a = Get-Acl -Path $_.FullName
    $a.SetAccessRuleProtection($false, $false)
    foreach ($r in @($a.Access | Where-Object { -not $_.IsInherited })) { [void]$a.RemoveAccessRule($r) }
    Set-Acl -Path $_.FullName -AclObject $a
}

if (-not $existing) {
    Invoke-Checked $gateway @('install', '--data-dir', $DataDir)
}
Invoke-Checked $gateway @('start')

# The portico:// handler for this user; end users register it themselves
# with the client they download from the portal.
& (Join-Path $InstallDir 'portico-client.exe') register
if ($LASTEXITCODE -ne 0) {
    Write-Warning 'portico-client register failed: portico:// links will not open the native client for this user'
}

# Start menu shortcut for the admin GUI, set to run as administrator: the
# admin token in the data directory is readable by Administrators only.
$lnk = Join-Path $env:ProgramData 'Microsoft\Windows\Start Menu\Programs\Portico Admin.lnk'
$shell = New-Object -ComObject WScript.Shell
$s = $shell.CreateShortcut($lnk)
$s.TargetPath = Join-Path $InstallDir 'portico-admin.exe'
$s.WorkingDirectory = $InstallDir
$s.Description = 'Configure the Portico gateway and User Portal'
$s.Save()
$bytes = [System.IO.File]::ReadAllBytes($lnk)
$bytes[0x15] = $bytes[0x15] -bor 0x20 # SLDF_RUNAS_USER: "Run as administrator"
[System.IO.File]::WriteAllBytes($lnk, $bytes)

Write-Host "Portico is installed in $InstallDir; data in $DataDir."
Write-Host "Service: Get-Service $service. Log: Event Viewer > Windows Logs > Application, source $service."
Write-Host "Open 'Portico Admin' from the Start menu to configure it (set the admin user's password on the Users page)."
