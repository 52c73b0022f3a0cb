; Portico setup.exe: a self-extracting wrapper around install.ps1, so the
; zip and the installer install the same way. Built by build-windows.sh:
;   makensis -DVERSION=... -DOUTFILE=... -DSRC=<unzipped folder> -DCOMPRESSOR=... setup.nsi
Unicode true
SetCompressor ${COMPRESSOR}
Name "Portico ${VERSION}"
OutFile "${OUTFILE}"
; install.ps1 needs an elevated PowerShell.
RequestExecutionLevel admin
ShowInstDetails show
Page instfiles

Section
  InitPluginsDir
  SetOutPath "$PLUGINSDIR\portico"
  File "${SRC}\portico-gateway.exe"
  File "${SRC}\portico-admin.exe"
  File "${SRC}\portico-client.exe"
  File "${SRC}\install.ps1"
  File "${SRC}\uninstall.ps1"
  File "${SRC}\README.txt"
  nsExec::ExecToLog 'powershell.exe -NoProfile -ExecutionPolicy Bypass -File "$PLUGINSDIR\portico\install.ps1"'
  Pop $0
  StrCmp $0 "0" done
    DetailPrint "install.ps1 failed (exit code $0)"
    Abort "Portico was not installed: see the details above"
  done:
SectionEnd
