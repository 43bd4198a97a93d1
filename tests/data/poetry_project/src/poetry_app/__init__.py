import idna
import six

VERSION = (six.__version__, idna.__version__)
