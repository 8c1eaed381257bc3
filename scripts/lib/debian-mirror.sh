# shellcheck shell=bash
# Sourced helper: find the Debian mirror this host already uses, so that
# scripts never hard-code a registry host name. Prints the first URI whose
# suite is the host's release codename (e.g. "bookworm"), from deb822
# *.sources files or one-line sources.list entries.

debian_codename() {
    # VERSION_CODENAME is set on every supported Debian release.
    (. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
}

debian_mirror_uri() {
    local codename uri
    codename=$(debian_codename)
    uri=$(
        {
            # deb822: paragraphs separated by blank lines; take URIs of a
            # paragraph that is enabled, of type deb, and lists the codename.
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] && { cat "$f"; echo; }
            done | awk -v cn="$codename" '
                function flush() {
                    if (uris != "" && types ~ /(^| )deb( |$)/ && enabled != "no" &&
                        (" " suites " ") ~ (" " cn " ")) { split(uris, u, " "); print u[1] }
                    uris = ""; types = ""; suites = ""; enabled = ""
                }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "uris:"    { $1 = ""; uris = $0 }
                tolower($1) == "types:"   { $1 = ""; types = $0 }
                tolower($1) == "suites:"  { $1 = ""; suites = $0 }
                tolower($1) == "enabled:" { enabled = tolower($2) }
                END { flush() }'
            # one-line format: deb [options] URI SUITE COMPONENTS...
            cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
                awk -v cn="$codename" '$1 == "deb" && $3 == cn { print $2 }'
        } | sed -e 's#/*$##' -e 's/^[ \t]*//' | head -n1
    )
    if [ -z "$uri" ]; then
        echo "error: no apt source for suite '$codename' found in /etc/apt/sources.list{,.d/*.sources,.d/*.list}" >&2
        return 1
    fi
    echo "$uri"
}
