-- PrintLab "Open in slicer": an applet that hands the dashboard's 3dprint:// and printlab:// links
-- to printlab-open. Build and register it as macos.md describes.
on open location theURL
	try
		-- quoted form of: the link reaches the helper as one argument, whatever it contains.
		do shell script "/usr/local/bin/python3 '/Library/Application Support/PrintLab/slicer_helper.py' " & quoted form of theURL
	on error errorMessage
		display alert "PrintLab could not open this file" message errorMessage as warning
	end try
end open location
