"""Online home-care support (オンライン在宅療養支援): the night and holiday visit, from a
family's call to medicine given at home. See ``docs/homecare.md``."""
